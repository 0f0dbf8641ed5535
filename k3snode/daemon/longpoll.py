"""Run a cloud's change signal in a thread: a metadata change arrives within seconds, not a poll.

A provider module may offer ``watch(client) -> wait``, where ``client`` is the one HTTP client
for its metadata service (no overall deadline: each request has its own) and ``wait(timeout)``
holds a request until the cloud's metadata changes and returns a reason ("" when nothing changed;
it raises on errors). Only GCP has such a call today (``providers/gcp.py``, ``wait_for_change``);
other clouds are covered by the poll timer (see docs/discovery.md for what each cloud offers).

The runner paces the watch against a misbehaving server: an error, or an answer that came back
at once although it should have waited, doubles a pause (``BACKOFF_FIRST`` … ``BACKOFF_MAX``,
each with ±50 % jitter so a fleet does not beat in step); a request that really waited resets it.
At most ``MAX_CHANGES_PER_MINUTE`` changes are reported per minute: a server inventing a new ETag
every time cannot make the daemon run pass after pass.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Callable

from k3snode import bounded
from k3snode.discovery import choose_provider, providers

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

WAIT_TIMEOUT = 300.0  # seconds one held request may wait; a change answers it at once
IMMEDIATE = 1.0  # an answer to a waiting request faster than this did not wait
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
MAX_CHANGES_PER_MINUTE = 6


class Pacer:
    """How long the watch loop sleeps before its next request (see the module docstring)."""

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


def watcher(settings: Settings) -> Callable[[float], str] | None:
    """The node's cloud's ``wait`` when that cloud offers a change signal, else None."""
    ds = settings.discovery
    try:
        provider = choose_provider(ds)[0]
    except Exception as e:  # a broken DMI or cloud-init file must not end the daemon
        log.warning("metadata long-poll: cannot tell the cloud (%s); polling only", e)
        return None
    module = providers.load(provider) if provider else None
    watch = getattr(module, "watch", None)
    if module is None or watch is None:
        return None
    from k3snode.discovery.http import Client

    client = Client(module.BASE, float("inf"), override=ds.metadata_endpoint, attempts=1,
                    max_body=1 << 20)  # fmt: skip
    return watch(client)


def start(settings: Settings, changed: Callable[[str], None], stopped: Callable[[], bool]) -> bool:
    """Watch in a daemon thread; ``changed(reason)`` on every change. False: nothing to watch.
    Errors are retried with the pacer's backoff and logged once until it works again."""
    wait = watcher(settings)
    if wait is None:
        return False
    pacer = Pacer()

    def loop() -> None:
        failing = False
        while not stopped():
            started = time.monotonic()
            try:
                reason = wait(WAIT_TIMEOUT)
            except Exception as e:
                if not failing:
                    log.warning(
                        "metadata long-poll: %s; retrying with backoff",
                        bounded.one_line(str(e), 200),
                    )
                failing = True
                time.sleep(pacer.after(time.monotonic() - started, ok=False))
                continue
            if failing:
                log.info("metadata long-poll: working again")
                failing = False
            time.sleep(pacer.after(time.monotonic() - started, ok=True))
            if reason:
                time.sleep(pacer.change_delay())
                if not stopped():
                    changed(reason)

    threading.Thread(target=loop, name="k3snode-longpoll", daemon=True).start()
    return True
