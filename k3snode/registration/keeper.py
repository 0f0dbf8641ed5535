"""The daemon's side of registration: one update at a time in a worker thread, retried with
exponential backoff and jitter, and a hold on K3s's restart until the update for the new address
has landed (or failed) — so agents can follow the moment K3s comes back.

While all is well the update is sent again every ``REFRESH`` seconds, or ``[daemon] poll_interval``
when that is longer (±10 %): adding a
record that is there changes nothing on the DNS server, and a zone restored from an old file, or a
record deleted by hand, heals without an address change.

The loop calls ``want`` from the pass, ``maybe_start`` and ``holds_restart`` every tick,
``due`` for its select timeout, and ``finished`` with the worker's Outcome. Nothing here blocks:
the worker's time is bounded by ``[registration] timeout`` and the hold by the same bound.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING, Any, Callable

from k3snode.health.checks import Observation
from k3snode.registration import Outcome, publish, published, wanted

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

REFRESH = 300.0  # seconds between re-sends of a published record (the metadata poll is faster)
FIRST_RETRY = 1.0  # seconds after the first failure; doubled after each further one


class Keeper:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float],
        deliver: Callable[[Outcome], None],
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._deliver = deliver  # called from the worker thread
        self._rng = rng or random.Random()
        self.wanted: tuple[str, ...] | None = None
        self.last: Outcome | None = None
        self.failures = 0
        self.updates = {"ok": 0, "error": 0}
        self._next_try: float | None = None
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self._last_error = ""
        rec = published.load(published.path(settings.paths.state_dir))
        self.published: tuple[str, ...] = (
            rec.addresses if rec is not None and rec.name == settings.registration.name else ()
        )

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def want_for(self, settings: Settings, external_ips: tuple[str, ...]) -> None:
        """``want`` what these settings publish for the pass's external addresses."""
        self.want(wanted(settings, external_ips))

    def want(self, addrs: tuple[str, ...]) -> None:
        """The pass's addresses. A change (or the first call: the record is confirmed once at
        start) asks for an update now, cancelling any backoff."""
        if addrs == self.wanted:
            return  # retries are the backoff's business
        self.failures = 0
        self.wanted = addrs
        self._next_try = self._clock()

    def due(self) -> float | None:
        """The next deadline the loop must wake for."""
        if self._thread is not None:  # past the hold, the worker's result wakes the loop
            end = self._started_at + self._bound()
            return end if self._clock() < end else None
        return self._next_try

    def _bound(self) -> float:
        return self.settings.registration.timeout + 1.0

    def maybe_start(self) -> bool:
        if self._thread is not None or self._next_try is None or self.wanted is None:
            return False
        if self._clock() < self._next_try:
            return False
        self._next_try = None
        self._started_at = self._clock()
        settings, addrs = self.settings, self.wanted

        def work() -> None:
            self._deliver(publish(settings, addrs))

        self._thread = threading.Thread(target=work, name="k3snode-registration", daemon=True)
        self._thread.start()
        return True

    def holds_restart(self) -> bool:
        """K3s's restart waits while the update for the current addresses is due or in flight,
        at most ``timeout`` (+1 s) from its start."""
        if self.wanted is None or self.wanted == self.published:
            return False
        if self._thread is not None:
            return self._clock() < self._started_at + self._bound()
        return self._next_try is not None and self._clock() >= self._next_try and not self.failures

    def finished(self, out: Outcome) -> None:
        """The worker's Outcome, on the loop's thread."""
        self._thread = None
        self.last = out
        self.updates["ok" if out.ok else "error"] += 1
        if out.ok:
            self.published = out.published
        if out.wanted != self.wanted:  # the address moved while the update ran: go again
            self._next_try = self._clock()
            return
        if out.ok:
            self.failures = 0
            if out.added or out.removed or self._last_error or self.updates["ok"] == 1:
                log.info("registration: %s", out.detail)
            self._last_error = ""
            refresh = max(self.settings.daemon.poll_interval, REFRESH)
            self._next_try = self._clock() + refresh * self._rng.uniform(0.9, 1.1)
            return
        self.failures += 1
        delay = self.backoff(self.failures)
        self._next_try = self._clock() + delay
        if out.detail != self._last_error:
            log.error("registration: %s; retrying in %.0fs, with backoff", out.detail, delay)
            self._last_error = out.detail
        else:
            log.debug("registration: %s; retrying in %.0fs", out.detail, delay)

    def backoff(self, failures: int) -> float:
        """1 s, 2 s, 4 s ... up to ``retry_max``, each drawn from [50 %, 100 %] of that (jitter:
        servers that lost DNS together do not retry together)."""
        cap = self.settings.registration.retry_max
        return min(cap, FIRST_RETRY * 2 ** min(failures - 1, 30)) * self._rng.uniform(0.5, 1.0)

    def observation(self) -> Observation:
        reg = self.settings.registration
        facts = {"name": reg.name, "published": ", ".join(self.published) or "-"}
        if self.last is None:
            return Observation(
                "registration", True, f"{reg.name}: first update pending", facts=facts
            )
        if self.last.ok:
            shown = ", ".join(self.published) or "nothing"
            return Observation(
                "registration", True, f"{reg.name} holds {shown} at {self.last.where}", facts=facts
            )
        return Observation("registration", False, self.last.detail, facts=facts)

    def status(self) -> dict[str, Any]:
        """For the status file (no secrets: names, addresses, times)."""
        reg = self.settings.registration
        last = self.last
        return {
            "name": reg.name,
            "server": reg.server or reg.backend,
            "published": list(self.published),
            "wanted": list(self.wanted) if self.wanted is not None else None,
            "last_update": None
            if last is None
            else {"time": last.time, "ok": last.ok, "detail": last.detail},
            "failures": self.failures,
            "updates": dict(self.updates),
        }

    def join(self, timeout: float) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)


def for_settings(
    settings: Settings, clock: Callable[[], float], deliver: Callable[[Outcome], None]
) -> Keeper | None:
    """A Keeper when this node publishes (a server with a registration name), else None."""
    return Keeper(settings, clock, deliver) if settings.registers else None
