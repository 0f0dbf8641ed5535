"""The daemon's loop: events and timers ask for a pass (``pipeline.py``); a pass that finds nothing
new does nothing. The loop itself only blocks in ``select``; whatever takes long (a K3s restart,
Tailscale's bring-up, a DNS update, the metadata long-poll) runs in a worker that hands its result
back through a queue and the wake pipe. The clock and the wall clock are injectable.

The pieces: ``schedule.py`` (timers), ``tracker.py`` (the addresses and their confirmation),
``observe.py`` (the periodic look), ``report.py`` (STATUS=, the status file, journal edges),
``restarts.py``, ``mesh_worker.py``, ``services.py`` (health endpoint, metrics, netlink,
long-poll); ``docs/architecture.md`` draws how they fit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import signal
import threading
import time
from typing import Any, Callable

from k3snode import pipeline
from k3snode.config.model import Settings
from k3snode.daemon import report
from k3snode.daemon.mesh_worker import MeshWorker
from k3snode.daemon.observe import Observations
from k3snode.daemon.passes import PassSteps
from k3snode.daemon.reporting import Reporting
from k3snode.daemon.restarts import Restarts
from k3snode.daemon.schedule import Schedule
from k3snode.daemon.services import Services
from k3snode.daemon.tracker import Addresses
from k3snode.discovery import Session
from k3snode.errors import UserError
from k3snode.health.checks import Observation
from k3snode.health.model import HealthModel
from k3snode.health.statusfile import remove_status
from k3snode.k3s.service import RestartResult
from k3snode.logs import Conditions, duration
from k3snode.systemd import Notifier

log = logging.getLogger(__name__)

CRASH_BACKOFF = 5.0  # seconds before whatever was due is tried again after an internal error


class Daemon(PassSteps, Reporting):
    """The loop and its state; the pass's steps are in ``passes.py``, the reports in
    ``reporting.py`` (mixins over the same state, each listing what it uses)."""

    def __init__(
        self,
        settings: Settings,
        reload: Callable[[], Settings] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        env: dict[str, str] | None = None,
        netlink: bool = True,
    ) -> None:
        self.settings = settings
        self._reload = reload
        self._clock = clock
        self._wall = wall
        self._use_netlink = netlink
        self.notifier = Notifier(env)
        self.health = HealthModel(settings.health.grace, wall, clock)
        self.conditions = Conditions(log, clock)  # journal lines on the edges of a condition
        self.schedule = Schedule(clock)
        self.schedule.next_poll(settings.daemon.poll_interval)
        self.addresses = Addresses()
        self.observations = Observations()
        self.services = Services()
        self.restarts = Restarts(clock, lambda r: self._deliver("restart", r))
        self.mesh = MeshWorker(lambda gen, error: self._deliver("mesh", (gen, error)))
        self.mesh.reset(settings)
        self.registration = self._registration_keeper(settings)
        self.underlay: Any = None  # the underlay's keeper (mesh/underlay/keeper.py), while on
        self._underlay_interval: float | None = None  # its pass interval, while on
        self._discovery = Session()  # metadata tokens kept between polls
        self._edges = report.CheckEdges(self.conditions)
        self._results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._stop = False
        self._stop_signal = 0  # the signal that asked to stop (logged by the loop, not the handler)
        self._hup = False
        self._running = False  # run() was called: READY starts what the loop needs after it
        self._ready = False
        self._started = clock()
        self._started_wall = wall()
        self._boot_problem: tuple[str, str] | None = None
        self._boot_restart = False  # the restart asked for before READY (K3s not up yet)
        self._boot_writes = 0  # config writes before the metrics existed
        self._last_crash = ""
        self._settings_error: str | None = None  # the last reload's error, until one works
        self._unconfigured: str | None = None
        self._judge_settings()
        self.last_restart: dict[str, Any] | None = None
        self.passes = 0

    # -- scheduling ------------------------------------------------------------------------

    def request_pass(self, why: str, debounce: float | None = None, quiet: bool = False) -> None:
        """Ask for a pass after the debounce; more events push it back, up to a cap."""
        wait = self.settings.daemon.debounce if debounce is None else debounce
        if self.schedule.ask_pass(wait, self.settings.daemon.debounce):
            # Timers and netlink's many events are for -v (what they change is logged by the
            # pass); a reload, the long-poll's news or someone else's edit get a line.
            quiet = quiet or why in ("poll", "confirm", "boot retry")
            (log.debug if quiet else log.info)("pass requested: %s", why)

    def _deadlines(self) -> list[float]:
        out = self.schedule.deadlines()
        if self.notifier.watchdog_interval:
            out.append(self.schedule.watchdog_due)
        if not self._ready:
            out.append(self._started + self.settings.daemon.boot_wait)
        due = self.restarts.due(self.settings.daemon.min_restart_interval)
        if due is not None:
            out.append(due)
        if self.registration is not None and self.registration.due() is not None:
            out.append(self.registration.due())
        return out

    def _deliver(self, kind: str, value: Any) -> None:
        """From a worker thread: hand a result to the loop and wake it."""
        self._results.put((kind, value))
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self._running = True
        # its port only before READY: serving it, /metrics and the observers follow READY
        self.services.listen_health(self.settings)
        if self._use_netlink:
            self.services.open_netlink()  # before the first pass: no change slips between
        try:
            while not self._stop:
                try:
                    self.tick()
                except Exception as e:  # a bug must not end the node's daemon: log, go on
                    self._crashed(e)
                if self._stop:
                    break
                self._wait(max(0.0, min(self._deadlines()) - self._clock()))
        finally:
            if self._stop_signal:
                log.info("%s: stopping", signal.Signals(self._stop_signal).name)
            self._shutdown()
        return 0

    def _wait(self, timeout: float) -> None:
        nl = self.services.netlink
        fds = [self._wake_r] + ([nl] if nl is not None else [])
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            readable = []
        if self._wake_r in readable:
            with contextlib.suppress(OSError):
                while os.read(self._wake_r, 512):
                    pass
        if nl is not None and nl in readable:
            reasons = self.services.read_netlink()
            if reasons:
                self.request_pass(reasons[-1], quiet=True)

    def tick(self) -> None:
        """Do what is due at the clock's now (the loop calls this; tests too, with their clock)."""
        now = self._clock()
        sched = self.schedule
        if self._hup:
            self._hup = False
            self._do_reload()
        while not self._results.empty():
            kind, value = self._results.get_nowait()
            if kind == "restart":
                self._restart_done(value)
            elif kind == "long-poll":
                self.request_pass(value, debounce=0)
            elif kind == "mesh":
                self._mesh_done(*value)
            elif kind == "registration":
                self._registration_done(value)
        if now >= sched.poll_due:
            sched.next_poll(self.settings.daemon.poll_interval)
            self.request_pass("poll", debounce=0)
        if sched.pass_is_due(now):
            self.run_pass()
            sched.health_due = now  # report right after a pass
        if sched.underlay_due is not None and now >= sched.underlay_due:
            self._keep_underlay()
        if not self._ready and now >= self._started + self.settings.daemon.boot_wait:
            self._become_ready(degraded=True)
        if self.registration is not None:
            self.registration.maybe_start()
        if self.registration is None or not self.registration.holds_restart():
            self.restarts.maybe_start(self.settings)  # after DNS has the new address (bounded)
        if now >= sched.health_due:
            self._report()
        if self._ready and self.notifier.watchdog_interval and now >= sched.watchdog_due:
            self.notifier.watchdog()
            sched.watchdog_due = now + self.notifier.watchdog_interval

    @property
    def ready(self) -> bool:
        """READY=1 was sent (after the first good pass, or when the boot wait ran out)."""
        return self._ready

    def _crashed(self, e: Exception) -> None:
        text = f"{e.__class__.__name__}: {e}"
        if text != self._last_crash:
            log.exception("internal error (the daemon goes on): %s", text)
            self._last_crash = text
        self.schedule.postpone_due(self._clock(), CRASH_BACKOFF)

    def reload(self) -> None:
        """What SIGHUP does: re-read the settings on the next tick."""
        self._hup = True

    # -- settings ----------------------------------------------------------------------------

    def unconfigured(self) -> str | None:
        """Why no pass may run (the one-line state), or None when the settings say what the node is."""
        return self._unconfigured

    def _judge_settings(self) -> None:
        """At start and after each reload: configured or not (a node last applied as something
        else shows the role refusal instead of the plain not-configured line)."""
        self._unconfigured = None
        if self.settings.configured:
            return
        self._unconfigured = self.settings.not_configured()
        try:
            pipeline.check_role(self.settings)
        except pipeline.RoleChangeError as e:
            self._unconfigured = str(e)
        except Exception:  # an unreadable state file is reported by the pass once configured
            pass

    def _not_configured(self) -> str | None:
        """The plain not-configured line (no reload error, no role refusal to show instead)."""
        u = self._unconfigured
        if u is not None and self._settings_error is None and u.startswith("not configured"):
            return u
        return None

    def _do_reload(self) -> None:
        self.notifier.reloading()
        if self._reload is not None:
            try:
                new = self._reload()
                pipeline.check_local(new)
            except UserError as e:
                log.error("reload: %s; keeping the previous settings", e)
                self._settings_error = f"{e} (running on the previous settings)"
                self.health.observe(
                    Observation("settings", False, self._settings_error), immediate=True
                )
            else:
                self._use_settings(new)
        self.request_pass("reload", debounce=0)
        self.schedule.take_pass()
        self.run_pass()
        self.schedule.health_due = self._clock()
        self.notifier.reloaded(self._status_line(self.snapshot()))

    def _use_settings(self, new: Settings) -> None:
        old = self.settings
        if (new.registers, new.registration) != (old.registers, old.registration):
            self.registration = self._registration_keeper(new)
            if self.registration is None:
                self.health.observe(Observation("registration", True, "not publishing"))
        self.settings = new
        self._settings_error = None
        self._judge_settings()
        self.health.grace = new.health.grace
        self.mesh.reset(new)
        log.info("reload: settings re-read (%s)", new.file or "no settings file")
        if new.configured:
            self.health.observe(Observation("settings", True, report.settings_read(new)))
            log.info("configured: %s", new.role)
            self._start_long_poll()

    # -- workers' results ------------------------------------------------------------------

    def _restart_done(self, result: RestartResult) -> None:
        self.restarts.finished(result)
        self.last_restart = {
            "time": self._wall(),
            "unit": result.unit,
            "outcome": result.outcome,
            "detail": result.detail,
            "duration": round(result.duration, 2),
        }
        if self.services.metrics is not None:
            self.services.metrics.restarts.labels(result.outcome).inc()
        if result.outcome == "not-installed":
            # Said once (the k3s check's condition), not after every config change.
            self.conditions.bad(
                "check:k3s",
                f"k3s: {result.detail}; its config is written and read when K3s starts",
                logging.INFO,
            )
        elif result.outcome == "not-running":
            (log.debug if self._boot_restart else log.info)(
                "K3s not restarted: %s; it reads the new config when it starts", result.detail
            )
        elif result.restarted:
            log.info("K3s restarted: %s after %s", result.detail, duration(result.duration))
            self.health.observe(Observation("k3s", True, result.detail))
        else:
            log.error("K3s restart %s: %s (not retried)", result.outcome, result.detail)
            self.health.observe(
                Observation("k3s", False, f"restart {result.outcome}: {result.detail}"),
                immediate=True,
            )
        self.schedule.health_due = self._clock()

    def _registration_keeper(self, settings: Settings) -> Any:
        """The registration's keeper on a server that publishes a name, else None."""
        if not settings.registers:
            return None
        # here, not at the top: only servers that publish a name need it (≈ 4 ms of imports)
        from k3snode.registration import keeper

        return keeper.for_settings(
            settings, self._clock, lambda outcome: self._deliver("registration", outcome)
        )

    def _registration_done(self, outcome: Any) -> None:
        if self.registration is None:
            return
        self.registration.finished(outcome)
        self.health.observe(self.registration.observation())
        if self.services.metrics is not None:
            self.services.metrics.registration_updates.labels("ok" if outcome.ok else "error").inc()
        self.schedule.health_due = self._clock()

    # -- signals, stop -----------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        # Handlers only set flags: they run between two bytecodes of the main thread, which may be
        # inside a write to stderr — logging from here raised "reentrant call" and lost the stop.
        def stop(signum: int, _frame: Any) -> None:
            self._stop_signal = self._stop_signal or signum
            self._stop = True

        def hup(_signum: int, _frame: Any) -> None:
            self._hup = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.services.stop()
        remove_status(self.settings.status_file)
        self.notifier.close()
        with contextlib.suppress(ValueError):
            if threading.current_thread() is threading.main_thread():
                signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        log.info("stopped")
