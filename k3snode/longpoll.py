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
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Callable

from k3snode import bounded

if TYPE_CHECKING:
    from k3snode.settings import Settings

log = logging.getLogger("k3snode")

BASE = "http://169.254.169.254"
PATH = "/computeMetadata/v1/instance/network-interfaces/"
HEADERS = {"Metadata-Flavor": "Google"}


class LongPollError(Exception):
    pass


class Watch:
    """``wait(timeout)`` → a reason when the interfaces changed since the last call, else ""."""

    def __init__(self, base: str = BASE) -> None:
        self.base = base.rstrip("/")
        self.etag = ""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def wait(self, timeout: float) -> str:
        seconds = max(1, int(timeout))
        query = "?recursive=true&alt=json"
        if self.etag:
            query += f"&wait_for_change=true&timeout_sec={seconds}&last_etag={self.etag}"
        req = urllib.request.Request(self.base + PATH + query, headers=HEADERS)
        try:
            with self._opener.open(req, timeout=seconds + 10) as resp:
                if resp.headers.get("Metadata-Flavor") != "Google":
                    raise LongPollError("answer without Metadata-Flavor: Google (not GCE)")
                etag = resp.headers.get("ETag", "")
                body = resp.read(1 << 20)
        except (urllib.error.URLError, OSError) as e:
            raise LongPollError(f"GCP metadata long-poll: {e}") from None
        if not etag:
            raise LongPollError("GCP metadata long-poll: no ETag in the answer")
        first = not self.etag
        changed = etag != self.etag
        self.etag = etag
        if first or not changed:
            return ""
        return f"GCP metadata changed ({_summary(body)})"


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
    timeout = min(settings.daemon.poll_interval, 300)

    def loop() -> None:
        failing = False
        while not stopped():
            try:
                reason = wait(settings, timeout)
            except Exception as e:
                if not failing:
                    log.warning("metadata long-poll: %s; retrying every 5s", e)
                failing = True
                time.sleep(5)
                continue
            if failing:
                log.info("metadata long-poll: working again")
                failing = False
            if reason is None:
                return
            if reason:
                changed(reason)

    threading.Thread(target=loop, name="k3snode-longpoll", daemon=True).start()
    return True
