"""Progress for steps that can take more than a second (a metadata service that does not answer,
a Tailscale install, a K3s restart).

A step is announced only when it is still running after ``after`` seconds, so quick answers stay
silent (the daemon polls every few minutes and must not fill the journal). In the journal (stderr
is not a terminal) that is one line when the wait starts and one when it ends; on a terminal the
waiting line counts the seconds in place.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable

from k3snode.logs import duration

ANNOUNCE_AFTER = 1.0


class Step:
    """``with Step(log, "asking aws metadata at 169.254.169.254 (up to 10 s)") as s: ...``;
    ``s.result("answered")`` sets the word logged at the end when the step was announced."""

    def __init__(
        self,
        logger: logging.Logger,
        text: str,
        after: float = ANNOUNCE_AFTER,
        clock: Callable[[], float] = time.monotonic,
        stream=None,
        report_end: bool = True,
    ) -> None:
        self._log = logger
        self._report_end = report_end  # False: the caller logs the outcome itself
        self.text = text
        self._after = after
        self._clock = clock
        self._stream = stream if stream is not None else sys.stderr
        self._tty = _isatty(self._stream) and logger.isEnabledFor(logging.INFO)
        self._done = threading.Event()
        self._announced = False
        self._lock = threading.Lock()
        self._started = 0.0
        self._outcome: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def announced(self) -> bool:
        return self._announced

    def result(self, outcome: str) -> None:
        self._outcome = outcome

    def __enter__(self) -> Step:
        self._started = self._clock()
        self._thread = threading.Thread(target=self._watch, name="k3snode-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(2)
        with self._lock:
            if not self._announced:
                return
            took = duration(self._clock() - self._started)
            outcome = self._outcome or (
                "done" if exc_type is None else f"failed ({exc_type.__name__})"
            )
            if self._tty:
                self._stream.write("\r\033[K")
                self._stream.flush()
            if self._report_end:
                self._log.info("%s: %s after %s", self.text, outcome, took)

    def _watch(self) -> None:
        if self._done.wait(self._after):
            return
        with self._lock:
            if self._done.is_set():
                return
            self._announced = True
            if not self._tty:
                self._log.info("%s…", self.text)
                return
        while not self._done.wait(0.5):
            with self._lock:
                if self._done.is_set():
                    return
                waited = self._clock() - self._started
                self._stream.write(f"\r\033[Kk3snode: {self.text}… {waited:.0f} s")
                self._stream.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
