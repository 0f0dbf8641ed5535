"""The health model: observations in, a ``Health`` out.

Components report ``checks.Observation``s; a failing check is in ``grace`` until it has failed
for ``[health] grace`` seconds (one failed poll is not an outage), then ``failing``. The node is
``ok`` while no check is failing, else ``degraded``; ``/healthz`` answers 200 or 503 with every
check and its reason. The daemon shows a node nobody configured as ``not-configured`` (503).

Grace is measured on the monotonic clock: a step of the wall clock neither hides a failing check
nor fails a fresh one. The wall clock only dates ``since`` and ``changed`` for people.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from k3snode.health.checks import Observation
from k3snode.record import asdict, field, record


@record
class CheckState:
    """One health check as reported: ok, in its grace period, or failing since when."""

    check: str
    state: str  # ok | grace | failing
    detail: str
    since: float | None = None  # unix time the check started failing
    facts: dict[str, str] = field(default_factory=dict)
    changed: float | None = None  # unix time the check last turned ok or not ok (first seen)

    @property
    def ok(self) -> bool:
        return self.state != "failing"


@record
class Health:
    """The node's health: overall status and every check."""

    status: str  # ok | degraded | not-configured
    checks: tuple[CheckState, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def failing(self) -> list[CheckState]:
        return [c for c in self.checks if c.state != "ok"]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [
                {k: v for k, v in asdict(c).items() if v not in (None, {})} for c in self.checks
            ],
        }


class HealthModel:
    """Observations in, a ``Health`` out; remembers since when each check fails."""

    def __init__(
        self,
        grace: float,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Grace is measured on ``clock`` (monotonic: a step of the wall clock changes nothing);
        ``wall`` only dates ``since`` for people. Tests that inject one clock get it for both."""
        self.grace = grace
        self._wall = wall
        self._clock = clock or (wall if wall is not time.time else time.monotonic)
        self._obs: dict[str, Observation] = {}
        self._failing_since: dict[str, float] = {}  # monotonic
        self._failing_wall: dict[str, float] = {}  # the same moment on the wall clock
        self._forced: dict[str, str] = {}  # check -> reason that fails it at once (no grace)
        self._changed: dict[str, float] = {}  # check -> when it last turned ok / not ok
        self._lock = threading.Lock()  # the HTTP thread reads while the loop writes

    def observe(self, obs: Observation, immediate: bool = False) -> None:
        """Record one observation; ``immediate`` skips the grace period (boot wait expired)."""
        with self._lock:
            self._observe(obs, immediate)

    def _observe(self, obs: Observation, immediate: bool) -> None:
        before = self._obs.get(obs.check)
        if before is None or before.ok != obs.ok:
            self._changed[obs.check] = self._wall()
        self._obs[obs.check] = obs
        if obs.ok:
            self._failing_since.pop(obs.check, None)
            self._failing_wall.pop(obs.check, None)
            self._forced.pop(obs.check, None)
        else:
            if obs.check not in self._failing_since:
                self._failing_since[obs.check] = self._clock()
                self._failing_wall[obs.check] = self._wall()
            if immediate:
                self._forced[obs.check] = obs.detail

    def snapshot(self) -> Health:
        now = self._clock()
        with self._lock:
            obs_all = dict(self._obs)
            failing_since = dict(self._failing_since)
            failing_wall = dict(self._failing_wall)
            forced = set(self._forced)
            changed = dict(self._changed)
        states = []
        for name in sorted(obs_all):
            obs = obs_all[name]
            since = failing_since.get(name)
            if obs.ok:
                state = "ok"
            elif name in forced or (since is not None and now - since >= self.grace):
                state = "failing"
            else:
                state = "grace"
            shown = failing_wall.get(name)
            states.append(
                CheckState(name, state, obs.detail, shown, dict(obs.facts), changed.get(name))
            )
        status = "degraded" if any(s.state == "failing" for s in states) else "ok"
        return Health(status, tuple(states))

    def next_change(self) -> float | None:
        """Seconds until a check in grace turns failing (when the status must be rewritten)."""
        now = self._clock()
        with self._lock:
            left = [
                since + self.grace - now
                for name, since in self._failing_since.items()
                if name not in self._forced
            ]
        left = [x for x in left if x > 0]
        return min(left) if left else None
