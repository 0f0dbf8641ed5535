"""K3s's systemd unit: the one place that knows its name, asks its state and restarts it.

K3s's unit is ``Type=notify`` with ``TimeoutStartSec=0``, so a blocking ``systemctl restart`` can
hang as long as the server is unreachable. k3snode restarts with ``--no-block`` and then watches
the unit: a new invocation that reaches ``active`` within the timeout is ``restarted``; one that
ends in ``failed`` is ``failed``; one still starting at the deadline is ``timeout``.

A unit that is not running — K3s not started yet, stopped by the operator, or not installed — is
never started: the config is written and K3s reads it when someone starts it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Callable

from k3snode import systemd
from k3snode.record import record

if TYPE_CHECKING:
    from k3snode.config.model import Settings

OUTCOMES = ("restarted", "failed", "timeout", "not-running", "not-installed", "error")
NO_SYSTEMD = "systemd is not running"
_NO_SYSTEMD = ("not been booted with systemd", "Failed to connect to bus")
_PROPS = ("LoadState", "ActiveState", "SubState", "InvocationID", "ExecMainStartTimestampMonotonic")


def unit_name(settings: Settings) -> str:
    """``k3s.service`` for servers, ``k3s-agent.service`` for agents, or ``[k3s] unit``."""
    return f"{settings.k3s.unit}.service"


@record
class UnitState:
    """A systemd unit's state, from one ``systemctl show``."""

    unit: str
    load: str  # loaded, not-found, masked, ... ("" when systemctl could not be asked)
    active: str  # active, activating, deactivating, inactive, failed, reloading
    sub: str  # running, auto-restart, dead, ...
    invocation: str
    started: str  # ExecMainStartTimestampMonotonic
    error: str = ""

    @property
    def installed(self) -> bool:
        return self.load not in ("", "not-found")

    @property
    def running(self) -> bool:
        """Running or starting in earnest (not waiting to auto-restart, which rereads the config)."""
        if self.active in ("active", "reloading"):
            return True
        return self.active == "activating" and self.sub != "auto-restart"

    def describe(self) -> str:
        if self.error:
            return self.error
        if not self.installed:
            return f"{self.unit} is not installed"
        return f"{self.unit} is {self.active} ({self.sub})"


@record
class RestartResult:
    """How a restart of K3s's unit ended."""

    unit: str
    outcome: str  # one of OUTCOMES
    detail: str
    duration: float = 0.0

    @property
    def restarted(self) -> bool:
        return self.outcome == "restarted"


class Service:
    """systemctl for one unit. ``clock`` and ``sleep`` are replaceable for tests."""

    def __init__(
        self,
        unit: str,
        systemctl: str = "systemctl",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.25,
    ) -> None:
        self.unit = unit
        self.systemctl = systemctl
        self._clock = clock
        self._sleep = sleep
        self._poll = poll

    @classmethod
    def for_settings(cls, settings: Settings, **kw) -> Service:
        return cls(unit_name(settings), **kw)

    def _systemctl(self, *args: str) -> subprocess.CompletedProcess:
        return systemd.systemctl(args, binary=self.systemctl)

    def state(self) -> UnitState:
        if shutil.which(self.systemctl) is None:
            return UnitState(self.unit, "", "", "", "", "", error="systemctl not found")
        try:
            out = self._systemctl("show", "--property=" + ",".join(_PROPS), self.unit)
        except (OSError, subprocess.TimeoutExpired) as e:
            return UnitState(self.unit, "", "", "", "", "", error=f"systemctl show failed: {e}")
        if out.returncode != 0:
            text = (out.stderr or out.stdout).strip()
            if any(m in text for m in _NO_SYSTEMD):
                return UnitState(self.unit, "", "", "", "", "", error=NO_SYSTEMD)
            why = text.splitlines()[-1] if text else f"exit status {out.returncode}"
            return UnitState(self.unit, "", "", "", "", "", error=f"systemctl show: {why}")
        props = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        return UnitState(
            self.unit,
            props.get("LoadState", ""),
            props.get("ActiveState", ""),
            props.get("SubState", ""),
            props.get("InvocationID", ""),
            props.get("ExecMainStartTimestampMonotonic", ""),
        )

    def restart_if_running(self, timeout: float) -> RestartResult:
        """Restart without blocking and wait up to ``timeout`` s for the new run to be active."""
        started = self._clock()
        before = self.state()
        if before.error == NO_SYSTEMD:
            return RestartResult(
                self.unit, "not-running", f"{NO_SYSTEMD}; {self.unit} not restarted"
            )
        if before.error:
            return RestartResult(self.unit, "error", before.error)
        if not before.installed:
            return RestartResult(self.unit, "not-installed", f"{self.unit} is not installed")
        if not before.running:
            return RestartResult(
                self.unit,
                "not-running",
                f"{self.unit} is {before.active} ({before.sub}); not started by k3snode",
            )
        try:
            out = self._systemctl("restart", "--no-block", self.unit)
        except (OSError, subprocess.TimeoutExpired) as e:
            return RestartResult(self.unit, "error", f"systemctl restart failed: {e}")
        if out.returncode != 0:
            why = (out.stderr or out.stdout).strip() or f"exit status {out.returncode}"
            return RestartResult(self.unit, "error", f"systemctl restart: {why}")
        return self._watch(before, started, timeout)

    def _watch(self, before: UnitState, started: float, timeout: float) -> RestartResult:
        deadline = started + timeout
        now = self._clock()
        while True:
            st = self.state()
            new_run = (st.invocation and st.invocation != before.invocation) or (
                st.started and st.started != before.started and st.started != "0"
            )
            if new_run and st.active == "active":
                return RestartResult(
                    self.unit, "restarted", f"{self.unit} is active again", now - started
                )
            if st.active == "failed":
                return RestartResult(
                    self.unit,
                    "failed",
                    f"{self.unit} failed after restart ({st.sub})",
                    now - started,
                )
            if now >= deadline:
                return RestartResult(
                    self.unit,
                    "timeout",
                    f"{self.unit} not active {timeout:g}s after restart ({st.describe()})",
                    now - started,
                )
            self._sleep(self._poll)
            now = self._clock()
