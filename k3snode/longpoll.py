"""GCP's metadata long-poll: a change of the node's network interfaces arrives within seconds.

Google's metadata server holds a request with ``wait_for_change=true`` until the answer differs
from ``last_etag`` (or ``timeout_sec`` passes) — the documented way to watch metadata. The daemon
runs ``Watch.wait`` in a thread and asks for a pass whenever it reports a change; discovery then
reads the addresses as always. Other clouds have no such call: the poll timer covers them.

``start`` runs the watch in a thread: the discovery module's own ``wait_for_change(settings,
timeout)`` when it offers one, else this module's GCP watch when the node is on GCP.
"""

from __future__ import annotations

import importlib
import logging
import random
import re
import threading
import time
from typing import TYPE_CHECKING, Callable

from k3snode import bounded

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger("k3snode")

BASE = "http://169.254.169.254"
PATH = "/computeMetadata/v1/instance/network-interfaces/"
HEADERS = {"Metadata-Flavor": "Google"}
LONG_POLL_TIMEOUT = 300  # timeout_sec of one hanging request; a change answers it at once


class LongPollError(Exception):
    pass


# A GCE ETag is 16 hex digits; anything else (spaces, quotes, a megabyte) is refused rather than
# sent back in the next URL.
_ETAG = re.compile(r"[0-9A-Za-z_.:-]{1,128}")
IMMEDIATE = 1.0  # an answer to a waiting request faster than this did not wait
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
MAX_CHANGES_PER_MINUTE = 6


class Watch:
    """``wait(timeout)`` → a reason when the interfaces changed since the last call, else "".

    Requests go through the shared metadata client (``discovery/metadata_http.py``): no proxy,
    no redirects (a 302 is an error, so ``Metadata-Flavor: Google`` never goes to another host),
    bounded body and time."""

    def __init__(self, base: str = BASE) -> None:
        self.base = base.rstrip("/")
        self.etag = ""

    def wait(self, timeout: float) -> str:
        from k3snode.discovery.errors import MetadataError
        from k3snode.discovery.metadata_http import Client

        seconds = max(1, int(timeout))
        query = "?recursive=true&alt=json"
        if self.etag:
            query += f"&wait_for_change=true&timeout_sec={seconds}&last_etag={self.etag}"
        client = Client(
            base=BASE,
            override=self.base,
            deadline=time.monotonic() + seconds + 10,
            read_timeout=seconds + 10,
            attempts=1,
            max_body=1 << 20,
        )
        try:
            resp = client.get(PATH + query, HEADERS, retry=False)
        except MetadataError as e:
            raise LongPollError(f"GCP metadata long-poll: {e}") from None
        if resp.status != 200:
            raise LongPollError(
                f"GCP metadata long-poll: HTTP {resp.status} (redirects not followed)"
            )
        if resp.header("Metadata-Flavor") != "Google":
            raise LongPollError("answer without Metadata-Flavor: Google (not GCE)")
        etag = resp.header("ETag")
        if not etag:
            raise LongPollError("GCP metadata long-poll: no ETag in the answer")
        if not _ETAG.fullmatch(etag):
            raise LongPollError(f"GCP metadata long-poll: invalid ETag {etag[:40]!r}")
        first = not self.etag
        changed = etag != self.etag
        self.etag = etag
        if first or not changed:
            return ""
        return f"GCP metadata changed ({_summary(resp.body)})"


class Pacer:
    """How long the watch loop sleeps before its next request.

    An error, or an answer that came back at once although it should have waited, doubles a
    pause (``BACKOFF_FIRST`` … ``BACKOFF_MAX``, each with ±50 % jitter so a fleet does not beat
    in step); a request that really waited resets it. At most ``MAX_CHANGES_PER_MINUTE``
    changes are reported per minute: a server inventing a new ETag every time cannot make the
    daemon run a pass after pass.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._rand = rand
        self._pause = 0.0
        self._changes: list[float] = []

    def after(self, took: float, ok: bool) -> float:
        """Seconds to sleep after a request that took ``took`` seconds and succeeded or not."""
        if ok and took >= IMMEDIATE:
            self._pause = 0.0
            return 0.0
        self._pause = BACKOFF_FIRST if self._pause == 0 else min(self._pause * 2, BACKOFF_MAX)
        return self._pause * (0.5 + self._rand())

    def change_delay(self) -> float:
        """Seconds to hold a change back so that at most the cap is reported per minute."""
        now = self._clock()
        self._changes = [t for t in self._changes if now - t < 60]
        if len(self._changes) < MAX_CHANGES_PER_MINUTE:
            self._changes.append(now)
            return 0.0
        wait = 60 - (now - self._changes[0])
        self._changes = [*self._changes[1:], now + wait]
        return wait


def _summary(body: bytes) -> str:
    try:
        nics = bounded.load_json(body)
        ips = [
            ac.get("externalIp", "")
            for nic in nics
            for ac in nic.get("accessConfigs", [])
            if ac.get("externalIp")
        ]
    except (ValueError, AttributeError, TypeError):
        return "network interfaces"
    return "external IP " + ", ".join(ips) if ips else "network interfaces"


def _clean(text: str) -> str:
    return bounded.one_line(text, 200)


def for_settings(settings: Settings) -> Callable[[Settings, float], str | None] | None:
    """A ``wait_for_change``-shaped callable when the node is on GCP, else None."""
    provider = settings.discovery.provider
    if provider == "auto":
        from k3snode import discovery

        choose = getattr(discovery, "choose_provider", None)
        if choose is None:
            return None
        try:
            provider = choose(settings.discovery)[0]
        except Exception:
            return None
    if provider != "gcp":
        return None
    watch = Watch(settings.discovery.metadata_endpoint or BASE)
    return lambda _settings, timeout: watch.wait(timeout)


def start(settings: Settings, changed: Callable[[str], None], stopped: Callable[[], bool]) -> bool:
    """Watch in a daemon thread; ``changed(reason)`` on every change. False: nothing to watch.

    The wait callable returns a truthy reason when the metadata changed, "" when not, None when
    there is nothing to watch (the thread ends); it may raise (retried every 5 s, logged once).
    """
    discovery = importlib.import_module("k3snode.discovery")
    wait = getattr(discovery, "wait_for_change", None)
    if not callable(wait):
        wait = for_settings(settings)
    if wait is None:
        return False
    timeout = LONG_POLL_TIMEOUT

    pacer = Pacer()

    def loop() -> None:
        failing = False
        while not stopped():
            started = time.monotonic()
            try:
                reason = wait(settings, timeout)
            except Exception as e:
                if not failing:
                    log.warning("metadata long-poll: %s; retrying with backoff", _clean(str(e)))
                failing = True
                time.sleep(pacer.after(time.monotonic() - started, ok=False))
                continue
            if failing:
                log.info("metadata long-poll: working again")
                failing = False
            if reason is None:
                return
            time.sleep(pacer.after(time.monotonic() - started, ok=True))
            if reason:
                time.sleep(pacer.change_delay())
                if not stopped():
                    changed(reason)

    threading.Thread(target=loop, name="k3snode-longpoll", daemon=True).start()
    return True
