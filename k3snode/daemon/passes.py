"""The pass as the daemon runs it: discover (with the daemon's metadata session), judge, confirm
a new address, write, ask for a restart — and the underlay and mesh steps before discovery. A
mixin of ``loop.Daemon``: the state it uses is declared below and made in ``Daemon.__init__``."""

from __future__ import annotations

import logging
from typing import Any, Callable

from k3snode import pipeline
from k3snode.config.model import Settings
from k3snode.daemon import report
from k3snode.daemon.mesh_worker import MeshWorker
from k3snode.daemon.restarts import Restarts
from k3snode.daemon.schedule import Schedule
from k3snode.daemon.services import Services
from k3snode.daemon.tracker import Addresses
from k3snode.discovery import Session
from k3snode.discovery.result import Discovery
from k3snode.errors import UserError
from k3snode.health.checks import Observation
from k3snode.health.metrics import failure_reason
from k3snode.health.model import HealthModel
from k3snode.k3s.service import Service
from k3snode.logs import Conditions

log = logging.getLogger(__name__)


class PassSteps:
    settings: Settings
    health: HealthModel
    conditions: Conditions
    schedule: Schedule
    addresses: Addresses
    services: Services
    restarts: Restarts
    mesh: MeshWorker
    registration: Any
    underlay: Any
    passes: int
    _clock: Callable[[], float]
    _wall: Callable[[], float]
    _discovery: Session
    _ready: bool
    _unconfigured: str | None
    _settings_error: str | None
    _boot_problem: tuple[str, str] | None
    _boot_restart: bool
    _boot_writes: int
    _underlay_interval: float | None
    # and from loop.Daemon / reporting.Reporting: request_pass, _become_ready

    def _discover(self) -> Discovery:
        started = self._clock()
        try:
            found = pipeline.discover(self.settings, self._discovery)
        except Exception as e:  # a broken discovery must never end the daemon
            found = Discovery(error=f"discovery failed: {e.__class__.__name__}: {e}")
        metrics = self.services.metrics
        if metrics is not None:
            metrics.discovery_seconds.observe(found.duration or self._clock() - started)
        return found

    def run_pass(self) -> bool:
        """One pass: discover, confirm, write, ask for a restart. True when the config is current."""
        self.passes += 1
        now = self._clock()
        if self._unconfigured is not None:
            if self._settings_error is None:
                self.health.observe(
                    Observation("settings", False, self._unconfigured), immediate=True
                )
            if not self._ready:
                self._become_ready(degraded=False)
            return False
        if not self.mesh.up:
            self.mesh.start(self.settings)  # its result asks for the pass that writes
            return False
        self._keep_underlay()
        found = self._discover()
        if not self._judged(found):
            return False
        self.addresses.last_discovery_ok = now
        self.health.observe(
            Observation("discovery", True, found.summary(), facts=report.discovery_facts(found))
        )
        addrs = tuple(found.external_ips)
        current = self.addresses.current
        if current is not None and addrs != current and self._ready:
            wait = self.addresses.confirm_wait(addrs, now, self.settings.daemon.confirm_delay)
            if wait is not None:
                self.request_pass("confirm", debounce=wait)
                return False
        try:
            written = pipeline.write(self.settings, found)
        except (UserError, OSError) as e:
            self.conditions.bad(
                "write", f"write failed: {e}; K3s config left as it was", logging.ERROR
            )
            self._failed_pass("config", f"cannot write: {e}")
            return False
        self.conditions.good("write", f"{written.path}: writing works again")
        self._after_write(written, addrs, found)
        if not self._ready:
            self._become_ready(degraded=False)
        return True

    def _judged(self, found: Discovery) -> bool:
        """False (and said once) when this discovery must not be written."""
        a = self.addresses
        refused = pipeline.judge(self.settings, found, allow_empty=not a.current)
        if not refused:
            if a.last_refusal is not None:
                self.conditions.good("discovery", f"discovery: working again ({found.summary()})")
                a.last_refusal = None
            return True
        if refused != a.last_refusal:
            kept = ", ".join(a.current) if a.current else "nothing written yet"
            self.conditions.bad(
                "discovery", f"discovery: {refused}; keeping last good state ({kept})"
            )
            a.last_refusal = refused
        else:
            self.conditions.bad("discovery", self.conditions.active("discovery") or refused)
        if self.services.metrics is not None:
            self.services.metrics.discovery_failures.labels(failure_reason(refused)).inc()
        if self.settings.mesh == "tailscale":  # down, logged out…: bring it up next pass
            self.mesh.up = False
        self._failed_pass("discovery", refused)
        return False

    def _after_write(
        self, written: pipeline.Written, addrs: tuple[str, ...], found: Discovery
    ) -> None:
        metrics = self.services.metrics
        if self.addresses.written(addrs, found, self._wall()) and metrics is not None:
            metrics.update(last_change=self.addresses.last_change["time"])  # type: ignore[index]
        if written.config_changed:
            log.info("written %s: %s", written.path, written.summary)
            if metrics is not None:
                metrics.config_writes.inc()
            else:
                self._boot_writes += 1  # counted once the metrics exist (after READY)
        for path in written.secrets_changed:
            log.info("written %s (0600)", path)
        if self.registration is not None:
            self.registration.want_for(self.settings, addrs)
        if written.restart_needed and (self._ready or not self._k3s_waits_for_us()):
            self._boot_restart = not self._ready  # K3s, ordered after k3snode, is not up yet
            self.restarts.request()

    def _k3s_waits_for_us(self) -> bool:
        """Before READY: True when K3s is installed and not running, so it reads the new config
        when it starts (it is ordered after k3snode). Decided here, not in the restart worker:
        that runs after READY has let K3s start, and would restart the K3s that just started."""
        st = Service.for_settings(self.settings).state()
        return not st.error and st.installed and not st.running

    def _failed_pass(self, check: str, reason: str) -> None:
        self.health.observe(Observation(check, False, reason))
        self._boot_problem = (check, reason)
        if not self._ready:  # keep trying during the boot wait
            self.request_pass("boot retry", debounce=min(1.0, self.settings.daemon.boot_wait))

    def _keep_underlay(self) -> None:
        """Underlay on: make its interface match the settings before K3s is pointed at its
        address as node-ip (so K3s's first start finds it), and again every ``PASS_INTERVAL``
        (a killed wireguard-go, a peer's new DNS answer). The daemon owns the one keeper; a new
        one after a reload that changed the settings. Never fails the pass: a problem is what
        the keeper saw, judged by the "underlay" check."""
        if not self.settings.underlay.enabled:
            self.underlay = self.schedule.underlay_due = self._underlay_interval = None
            return
        # here, not at the top: only underlay nodes pay for WireGuard's modules
        from k3snode.mesh.underlay.keeper import PASS_INTERVAL, Keeper

        if self.underlay is None or self.underlay.settings != self.settings:
            self.underlay = Keeper(self.settings, clock=self._clock, wall=self._wall)
        self.underlay.keep()
        self._underlay_interval = PASS_INTERVAL
        self.schedule.underlay_due = self._clock() + PASS_INTERVAL

    def _mesh_done(self, gen: int, error: str | None) -> None:
        outcome = self.mesh.finished(gen, error)
        if outcome == "outdated":  # settings changed meanwhile: bring up with the new ones
            self.request_pass("mesh settings changed", debounce=0)
        elif outcome == "failed":
            self.conditions.bad("mesh", f"mesh: {error}", logging.ERROR)
            self.addresses.last_refusal = error
            self._failed_pass(self.settings.mesh, str(error))
        else:
            if self.conditions.good("mesh", f"mesh: {self.settings.mesh} is up"):
                self.addresses.last_refusal = None
            self.request_pass("mesh up", debounce=0, quiet=True)
