"""The loop's timers, on the monotonic clock: the loop sleeps in ``select`` until the earliest.

A pass is asked for with a debounce: more events push it back, up to ten debounces (at least
5 s) after the first, so a burst of netlink events gives one pass and a steady trickle still
gets one. The metadata poll comes every ``poll_interval`` ±10 % (jitter spreads a fleet's
requests)."""

from __future__ import annotations

import random
from typing import Callable


class Schedule:
    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        now = clock()
        self.pass_due: float | None = now  # the first pass runs at once
        self.first_event: float | None = None  # when the pending pass was first asked for
        self.poll_due = now
        self.health_due = now
        self.watchdog_due = now
        self.underlay_due: float | None = None

    def jitter(self, interval: float) -> float:
        return interval * self._rng.uniform(0.9, 1.1)

    def next_poll(self, interval: float) -> None:
        self.poll_due = self._clock() + self.jitter(interval)

    def ask_pass(self, wait: float, debounce: float) -> bool:
        """A pass in ``wait`` seconds (0: at once), pushed back by later asks up to the cap.
        True when this is the first ask since the last pass (worth a log line)."""
        now = self._clock()
        first = self.first_event is None
        if first:
            self.first_event = now
        cap = self.first_event + max(10 * debounce, 5.0)  # type: ignore[operator]
        due = min(now + wait, cap)
        if self.pass_due is None or wait == 0 or due > self.pass_due:
            self.pass_due = due if wait else now
        return first

    def pass_is_due(self, now: float) -> bool:
        """True (and the pending pass taken) when the pass is due at ``now``."""
        if self.pass_due is None or now < self.pass_due:
            return False
        self.take_pass()
        return True

    def take_pass(self) -> None:
        self.pass_due = None
        self.first_event = None

    def postpone_due(self, now: float, seconds: float) -> None:
        """After an internal error: whatever was due is tried again in ``seconds`` (no tight loop
        when the same thing fails again)."""
        for attr in ("pass_due", "poll_due", "health_due", "watchdog_due"):
            due = getattr(self, attr)
            if due is not None and due <= now:
                setattr(self, attr, now + seconds)

    def deadlines(self) -> list[float]:
        out = [self.poll_due, self.health_due]
        if self.pass_due is not None:
            out.append(self.pass_due)
        if self.underlay_due is not None:
            out.append(self.underlay_due)
        return out
