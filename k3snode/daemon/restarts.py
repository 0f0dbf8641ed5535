"""K3s restarts, calmly: one at a time, at most one per ``[daemon] min_restart_interval``, each
in a worker thread (watching a restart can take ``[daemon] restart_timeout``), its result handed
back to the daemon's loop. A restart asked for inside the interval waits for its end; asking again
meanwhile changes nothing, so a burst of changes gives one restart with the last config.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from k3snode import pipeline
from k3snode.config.model import Settings
from k3snode.k3s.service import RestartResult, unit_name
from k3snode.progress import Step

log = logging.getLogger(__name__)


class Restarts:
    def __init__(
        self, clock: Callable[[], float], deliver: Callable[[RestartResult], None]
    ) -> None:
        self._clock = clock
        self._deliver = deliver  # called from the worker thread with the result
        self.pending = False
        self._thread: threading.Thread | None = None
        self._last_at: float | None = None
        self._deferred_logged = False

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def request(self) -> None:
        self.pending = True

    def due(self, interval: float) -> float | None:
        """When a deferred restart may run (a deadline for the loop), or None."""
        if self.pending and self._last_at is not None:
            return self._last_at + interval
        return None

    def maybe_start(self, settings: Settings) -> bool:
        """Start the pending restart if none runs and the interval allows; True when started."""
        if not self.pending or self._thread is not None:
            return False
        now = self._clock()
        interval = settings.daemon.min_restart_interval
        if self._last_at is not None and now < self._last_at + interval:
            if not self._deferred_logged:
                log.info(
                    "K3s restart deferred %.1fs (at most one per %gs)",
                    self._last_at + interval - now,
                    interval,
                )
                self._deferred_logged = True
            return False
        self.pending = False
        self._deferred_logged = False
        self._last_at = now
        log.debug("asking K3s to restart: its config changed")

        def work() -> None:

            text = (
                f"restarting {unit_name(settings)}: its config changed "
                f"(up to {settings.daemon.restart_timeout:g} s)"
            )
            try:
                with Step(log, text, report_end=False) as step:
                    result = pipeline.restart(settings)
                    step.result(result.outcome)
            except Exception as e:  # pragma: no cover - defensive
                result = RestartResult(unit_name(settings), "error", str(e))
            self._deliver(result)

        self._thread = threading.Thread(target=work, name="k3snode-restart", daemon=True)
        self._thread.start()
        return True

    def finished(self, result: RestartResult) -> None:
        """The loop took the result. A K3s that was not running was not restarted: the interval
        does not count from it."""
        self._thread = None
        if result.outcome in ("not-running", "not-installed"):
            self._last_at = None

    def join(self, timeout: float) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)
