"""The daemon's reports: the periodic look (``observe.py``) and what it publishes — /metrics'
snapshot, STATUS=, the status file, the journal's check edges — and READY=1 itself, with what
starts right after it. A mixin of ``loop.Daemon``: the state it uses is declared below."""

from __future__ import annotations

import logging
from typing import Any, Callable

from k3snode.config.model import Settings
from k3snode.daemon import report
from k3snode.daemon.observe import Observations, health_interval
from k3snode.daemon.restarts import Restarts
from k3snode.daemon.schedule import Schedule
from k3snode.daemon.services import Services
from k3snode.daemon.tracker import Addresses
from k3snode.health.checks import Observation
from k3snode.health.model import Health, HealthModel
from k3snode.health.statusfile import write_status
from k3snode.record import replace
from k3snode.systemd import Notifier

log = logging.getLogger(__name__)


class Reporting:
    settings: Settings
    health: HealthModel
    notifier: Notifier
    schedule: Schedule
    addresses: Addresses
    observations: Observations
    services: Services
    restarts: Restarts
    registration: Any
    underlay: Any
    last_restart: dict[str, Any] | None
    _clock: Callable[[], float]
    _wall: Callable[[], float]
    _edges: report.CheckEdges
    _ready: bool
    _running: bool
    _started_wall: float
    _boot_problem: tuple[str, str] | None
    _boot_writes: int
    _underlay_interval: float | None
    _unconfigured: str | None
    # and from loop.Daemon: request_pass, _not_configured, _deliver

    def snapshot(self) -> Health:
        """The health as /healthz, STATUS= and the status file show it: ``not-configured`` (503)
        while nothing says what the node is."""
        snap = self.health.snapshot()
        if self._not_configured() is not None:
            return replace(snap, status="not-configured")
        return snap

    def _observe_k3s(self) -> None:
        if self._unconfigured is not None or self.restarts.busy:
            return
        self.observations.k3s(self.settings, self.health, self.last_restart)
        if self.services.metrics is not None:
            self.services.metrics.update(k3s_active=self.observations.k3s_active)

    def _observe(self) -> None:
        if self._unconfigured is not None:
            return  # nothing to watch until the node is configured; "settings" says why
        self._observe_k3s()
        wanted = self.observations.rest(
            self.settings, self.health, self.addresses, self._clock(), self.underlay
        )
        if wanted is not None and self.schedule.pass_due is None:
            self.request_pass(wanted)
        if self.registration is not None:
            self.health.observe(self.registration.observation())

    def _facts(self) -> report.Facts:
        return report.Facts(
            settings=self.settings,
            addresses=self.addresses,
            k3s_state=self.observations.k3s_state,
            not_configured=self._not_configured(),
            registration=self.registration,
            started_wall=self._started_wall,
            ready=self._ready,
            last_restart=self.last_restart,
            restart_pending=self.restarts.pending,
            observed=self.observations.observed,
            health_port=self.services.health_port,
        )

    def _status_line(self, snap: Health) -> str:
        return report.status_line(self._facts(), snap)

    def _write_status(self, snap: Health, line: str) -> None:
        try:
            write_status(
                self.settings.status_file, report.status(self._facts(), snap, line, self._wall())
            )
        except OSError as e:
            log.warning("cannot write status file %s: %s", self.settings.status_file, e)

    def _report(self, notify: bool = True) -> str:
        """Observe, then publish: metrics, STATUS=, the status file. Returns the status line."""
        now = self._clock()
        self._observe()
        snap = self.snapshot()
        self._edges.log(snap)
        if self.services.metrics is not None:
            self.services.metrics.update(
                health=snap,
                addresses=tuple(self.addresses.rows()),
                peers=self.observations.observed,
                peers_at=self._wall(),
                registration=report.registration_status(self.registration),
            )
        line = self._status_line(snap)
        if self._ready and notify:
            self.notifier.status(line)
        self._write_status(snap, line)
        nxt = self.health.next_change()
        interval = health_interval(self.settings, self._underlay_interval)
        self.schedule.health_due = now + (
            min(interval, nxt + 0.05) if nxt is not None else interval
        )
        return line

    def _become_ready(self, degraded: bool) -> None:
        """READY=1 as soon as the config is written (or the boot wait is over): the status file
        first, then systemd. What K3s's start does not need — the observers, the config check,
        prometheus-client's metrics, the metadata long-poll — starts right after."""
        self._ready = True
        if degraded:
            check, why = self._boot_problem or ("discovery", "no pass finished")
            log.warning(
                "boot wait of %gs over: ready without a fresh config (%s); K3s starts with the "
                "config on disk",
                self.settings.daemon.boot_wait,
                why,
            )
            self.health.observe(Observation(check, False, why), immediate=True)
        self._observe_k3s()  # the status K3s's start is judged by; the other checks follow
        snap = self.snapshot()
        line = self._status_line(snap)
        self._write_status(snap, line)
        self.notifier.ready(line)
        log.info("ready: %s", line)
        if self._running:
            self.services.serve_health(self.settings, self.snapshot)
            self._start_metrics()
            if self.settings.configured:
                self._start_long_poll()
        self.schedule.health_due = self._clock()  # the full report (observers, K3s's state) next

    def _start_metrics(self) -> None:
        """prometheus-client's registry, with what the passes before READY did."""
        metrics = self.services.start_metrics()
        if metrics is None:
            return
        found = self.addresses.found
        if found is not None and found.duration:
            metrics.discovery_seconds.observe(found.duration)
        if self._boot_writes:
            metrics.config_writes.inc(self._boot_writes)
        if self.addresses.last_change is not None:
            metrics.update(last_change=self.addresses.last_change["time"])

    def _start_long_poll(self) -> None:
        self.services.start_long_poll(
            self.settings, lambda reason: self._deliver("long-poll", reason), lambda: self._stop
        )
