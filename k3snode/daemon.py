"""``k3snode run``: the loop around the pass — events and timers ask for a pass; a pass that
finds nothing new does nothing.

- **Start**: discover → render → write, then ``READY=1``. If no pass succeeds within
  ``[daemon] boot_wait``, become ready anyway, degraded, with the config on disk untouched. Mesh
  "tailscale" is brought up first, in a worker thread (minutes at worst), so ``boot_wait`` and
  ``WATCHDOG=1`` hold; its result asks for the pass.
- **Events**: netlink address and default-route changes (``netwatch.py``), debounced by
  ``[daemon] debounce``; a metadata poll every ``[daemon] poll_interval`` (±10 % jitter); GCP's
  metadata long-poll (``longpoll.py``) so a change there arrives within seconds.
- **Calm**: a failed pass or one without an address keeps the last good state. A new address is
  used only when seen again ``[daemon] confirm_delay`` later. K3s restarts only when what it reads
  changed, at most once per ``[daemon] min_restart_interval``, never when it was not running; a
  restart that fails is reported, not retried.
- **Signals**: SIGTERM/SIGINT → ``STOPPING=1`` and exit 0; SIGHUP → ``RELOADING=1``, settings
  re-read (a bad file keeps the old settings; its one-line error is the failing "settings" check
  in STATUS=, /healthz and ``k3snode status`` until a reload succeeds).
- **Not configured**: while nothing says what the node is (``Settings.configured``: no role, server
  URL or cluster_init anywhere), no pass runs and nothing is written; READY=1 comes at once with
  ``STATUS=not configured: …`` (what to do), /healthz answers 503 with the same line. A reload
  that brings settings goes on as a normal start.

The clock and the wall clock are injectable; the loop itself only blocks in ``select``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import random
import select
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from k3snode import __version__, pipeline
from k3snode.discovery import Session
from k3snode.health.checks import Observation
from k3snode.health.metrics import Metrics, failure_reason
from k3snode.health.model import Health, HealthModel
from k3snode.health.server import HealthServer
from k3snode.health.statusfile import peer_rows, remove_status, write_status
from k3snode.logs import Conditions, duration
from k3snode.restarts import Restarts
from k3snode.systemd import Notifier

if TYPE_CHECKING:
    from k3snode.config.model import Settings
    from k3snode.discovery.result import Discovery
    from k3snode.k3s.service import RestartResult
    from k3snode.mesh.underlay.keeper import Keeper

log = logging.getLogger("k3snode")


class Daemon:
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
        self.notifier = Notifier(env)
        self._use_netlink = netlink
        self.health = HealthModel(settings.health.grace, wall, clock)
        self.metrics: Metrics | None = None
        self._server: HealthServer | None = None
        self._rng = random.Random()
        self._running = False  # run() was called: READY starts what the loop needs after it
        self._boot_writes = 0  # config writes before the metrics existed
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._results: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = False
        self._hup = False
        self._nl: Any = None
        # pass scheduling (monotonic times)
        self._started = clock()
        self._started_wall = wall()
        self._ready = False
        self._pass_due: float | None = clock()
        self._first_event: float | None = None
        self._poll_due = clock() + self._jitter(settings.daemon.poll_interval)
        self._health_due = clock()
        self._watchdog_due = clock()
        # what we know
        self.current: tuple[str, ...] | None = None
        self.found: Discovery | None = None
        self.candidate: tuple[str, ...] | None = None
        self._candidate_since = 0.0
        self._last_refusal: str | None = None
        self._boot_problem: tuple[str, str] | None = None
        self._mesh_ok = settings.mesh != "tailscale"
        self._mesh_gen = 0  # bumped by a reload: a bring-up for older settings does not count
        self._mesh_busy = False  # a bring-up runs in its worker thread
        self._last_crash = ""
        self._long_poll_started = False
        self._settings_error: str | None = None  # the last reload's one-line error, until one works
        self._unconfigured: str | None = None
        self._judge_settings()
        self._last_discovery_ok: float | None = None
        self._discovery = Session()  # metadata tokens kept between polls
        self.restarts = Restarts(clock, self._restart_result)
        self.last_restart: dict[str, Any] | None = None
        self.last_change: dict[str, Any] | None = None
        self._k3s_state = ""
        self._observed: list[Observation] = []  # the observers' last answers (peers for metrics)
        self._observers: tuple[Callable, ...] | None = None  # made at the first health report
        self.passes = 0
        # Edge-triggered log lines: a condition is logged when it starts and when it ends.
        self.conditions = Conditions(log, clock)
        self._check_states: dict[str, str] = {}  # check -> state last logged about
        self._boot_restart = False
        self.registration = self._registration_keeper(settings)
        self.underlay: Keeper | None = None  # the underlay's keeper, while the underlay is on
        self._underlay_due: float | None = None

    # -- scheduling ------------------------------------------------------------------------

    def _jitter(self, interval: float) -> float:
        return interval * self._rng.uniform(0.9, 1.1)

    def request_pass(self, why: str, debounce: float | None = None, quiet: bool = False) -> None:
        """Ask for a pass after the debounce; more events push it back, up to a cap."""
        now = self._clock()
        wait = self.settings.daemon.debounce if debounce is None else debounce
        if self._first_event is None:
            self._first_event = now
            # Timers and netlink's many events are for -v (what they change is logged by the
            # pass); a reload, the long-poll's news or someone else's edit get a line.
            quiet = quiet or why in ("poll", "confirm", "boot retry")
            (log.debug if quiet else log.info)("pass requested: %s", why)
        cap = self._first_event + max(10 * self.settings.daemon.debounce, 5.0)
        due = min(now + wait, cap)
        if self._pass_due is None or wait == 0 or due > self._pass_due:
            self._pass_due = due if wait else now

    def _deadlines(self) -> list[float]:
        out = [self._poll_due, self._health_due]
        if self._pass_due is not None:
            out.append(self._pass_due)
        if self._underlay_due is not None and self.settings.underlay.enabled:
            out.append(self._underlay_due)
        if self.notifier.watchdog_interval:
            out.append(self._watchdog_due)
        if not self._ready:
            out.append(self._started + self.settings.daemon.boot_wait)
        due = self.restarts.due(self.settings.daemon.min_restart_interval)
        if due is not None:
            out.append(due)
        if self.registration is not None and self.registration.due() is not None:
            out.append(self.registration.due())
        return out

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self._running = True
        self._start_health_server()  # its port only: /metrics and the observers follow READY
        if self._use_netlink:
            self._open_netlink()  # before the first pass, so no change slips between the two
        try:
            while not self._stop:
                try:
                    self.tick()
                except Exception as e:  # a bug must not end the node's daemon: log, go on
                    self._crashed(e)
                if self._stop:
                    break
                timeout = max(0.0, min(self._deadlines()) - self._clock())
                fds = [self._wake_r] + ([self._nl] if self._nl is not None else [])
                try:
                    readable, _, _ = select.select(fds, [], [], timeout)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    readable = []
                if self._wake_r in readable:
                    with contextlib.suppress(OSError):
                        while os.read(self._wake_r, 512):
                            pass
                if self._nl is not None and self._nl in readable:
                    self._read_netlink()
        finally:
            self._shutdown()
        return 0

    def tick(self) -> None:
        """Do what is due at the clock's now (the loop calls this; tests too, with their clock)."""
        now = self._clock()
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
        if now >= self._poll_due:
            self._poll_due = now + self._jitter(self.settings.daemon.poll_interval)
            self.request_pass("poll", debounce=0)
        if self._pass_due is not None and now >= self._pass_due:
            self._pass_due = None
            self._first_event = None
            self.run_pass()
            self._health_due = now  # report right after a pass
        if self._underlay_due is not None and now >= self._underlay_due:
            self._keep_underlay()
        if not self._ready and now >= self._started + self.settings.daemon.boot_wait:
            self._become_ready(degraded=True)
        if self.registration is not None:
            self.registration.maybe_start()
        if self.registration is None or not self.registration.holds_restart():
            self.restarts.maybe_start(self.settings)  # after DNS has the new address (bounded)
        if now >= self._health_due:
            self._report()
        if self._ready and self.notifier.watchdog_interval and now >= self._watchdog_due:
            self.notifier.watchdog()
            self._watchdog_due = now + self.notifier.watchdog_interval

    @property
    def ready(self) -> bool:
        """READY=1 was sent (after the first good pass, or when the boot wait ran out)."""
        return self._ready

    def _crashed(self, e: Exception) -> None:
        text = f"{e.__class__.__name__}: {e}"
        if text != self._last_crash:
            log.exception("internal error (the daemon goes on): %s", text)
            self._last_crash = text
        # No tight loop if the same thing fails again: whatever was due is retried in 5 s.
        now = self._clock()
        for attr in ("_pass_due", "_poll_due", "_health_due", "_watchdog_due"):
            due = getattr(self, attr)
            if due is not None and due <= now:
                setattr(self, attr, now + 5.0)

    def request_reload(self) -> None:
        """What SIGHUP does: re-read the settings on the next tick."""
        self._hup = True

    @property
    def pending_restart(self) -> bool:
        return self.restarts.pending

    def join_restart(self, timeout: float = 30.0) -> None:
        """Wait for an in-flight K3s restart to finish (tests; its result lands on the next tick)."""
        self.restarts.join(timeout)

    # -- the pass ----------------------------------------------------------------------------

    def _discover(self) -> Discovery:
        from k3snode.discovery.result import Discovery

        started = self._clock()
        try:
            found = pipeline.discover(self.settings, self._discovery)
        except Exception as e:  # a broken discovery must never end the daemon
            found = Discovery(error=f"discovery failed: {e.__class__.__name__}: {e}")
        if self.metrics is not None:
            self.metrics.discovery_seconds.observe(found.duration or self._clock() - started)
        return found

    def run_pass(self) -> bool:
        """One pass: discover, confirm, write, ask for a restart. True when the config is current."""
        from k3snode.config.model import SettingsError
        from k3snode.k3s.configfile import ConfigFileError

        self.passes += 1
        now = self._clock()
        unconfigured = self.unconfigured()
        if unconfigured is not None:
            if self._settings_error is None:
                self.health.observe(Observation("settings", False, unconfigured), immediate=True)
            if not self._ready:
                self._become_ready(degraded=False)
            return False
        if not self._mesh_ok and not self._bring_mesh_up():
            return False
        self._keep_underlay()
        found = self._discover()
        refused = pipeline.judge(self.settings, found, allow_empty=not self.current)
        if refused:
            if refused != self._last_refusal:
                kept = ", ".join(self.current) if self.current else "nothing written yet"
                self.conditions.bad(
                    "discovery", f"discovery: {refused}; keeping last good state ({kept})"
                )
                self._last_refusal = refused
            else:
                self.conditions.bad("discovery", self.conditions.active("discovery") or refused)
            if self.metrics is not None:
                self.metrics.discovery_failures.labels(failure_reason(refused)).inc()
            if self.settings.mesh == "tailscale":  # down, logged out…: bring it up next pass
                self._mesh_ok = False
            self._failed_pass("discovery", refused)
            return False
        if self._last_refusal is not None:
            self.conditions.good("discovery", f"discovery: working again ({found.summary()})")
            self._last_refusal = None
        self._last_discovery_ok = now
        self.health.observe(
            Observation("discovery", True, found.summary(), facts=_discovery_facts(found))
        )
        addrs = tuple(found.external_ips)
        changed = self.current is not None and addrs != self.current
        if changed and self._ready and not self._confirmed(addrs, now):
            return False
        self.candidate = None
        try:
            written = pipeline.write(self.settings, found)
        except (SettingsError, ConfigFileError, OSError) as e:
            self.conditions.bad(
                "write", f"write failed: {e}; K3s config left as it was", logging.ERROR
            )
            self._failed_pass("config", f"cannot write: {e}")
            return False
        self.conditions.good("write", f"{written.path}: writing works again")
        if addrs != self.current:
            before = ", ".join(self.current) if self.current else "none"
            after = ", ".join(addrs) or "none"
            if self.current is not None:
                log.info("external address changed from %s to %s", before, after)
            self.last_change = {
                "time": self._wall(),
                "from": list(self.current or ()),
                "to": list(addrs),
            }
            if self.metrics is not None:
                self.metrics.update(last_change=self.last_change["time"])
        self.current = addrs
        self.found = found
        if written.config_changed:
            log.info("written %s: %s", written.path, written.summary)
            if self.metrics is not None:
                self.metrics.config_writes.inc()
            else:
                self._boot_writes += 1  # counted once the metrics exist (after READY)
        for path in written.secrets_changed:
            log.info("written %s (0600)", path)
        if self.registration is not None:
            from k3snode.registration import wanted

            self.registration.want(wanted(self.settings, addrs))
        if written.restart_needed and (self._ready or not self._k3s_waits_for_us()):
            self._boot_restart = not self._ready  # K3s, ordered after k3snode, is not up yet
            self.restarts.request()
        if not self._ready:
            self._become_ready(degraded=False)
        return True

    def _k3s_waits_for_us(self) -> bool:
        """Before READY: True when K3s is installed and not running, so it reads the new config
        when it starts (it is ordered after k3snode). Decided here, not in the restart worker:
        that runs after READY has let K3s start, and would restart the K3s that just started."""
        from k3snode.k3s.service import Service

        st = Service.for_settings(self.settings).state()
        return not st.error and st.installed and not st.running

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

    def _not_configured(self) -> bool:
        """The plain not-configured state (no reload error, no role refusal to show instead)."""
        u = self._unconfigured
        return u is not None and self._settings_error is None and u.startswith("not configured")

    def snapshot(self) -> Health:
        """The health as /healthz, STATUS= and the status file show it: ``not-configured`` (503)
        while nothing says what the node is."""
        snap = self.health.snapshot()
        if self._not_configured():
            return dataclasses.replace(snap, status="not-configured")
        return snap

    def _keep_underlay(self) -> None:
        """Underlay on: make its interface match the settings before K3s is pointed at its
        address as node-ip (so K3s's first start finds it), and again every ``PASS_INTERVAL``
        (a killed wireguard-go, a peer's new DNS answer). The daemon owns the one keeper; a new
        one after a reload that changed the settings. Never fails the pass: a problem is what
        the keeper saw, judged by the "underlay" check."""
        if not self.settings.underlay.enabled:
            self.underlay = self._underlay_due = None
            return
        from k3snode.mesh.underlay.keeper import PASS_INTERVAL, Keeper

        if self.underlay is None or self.underlay.settings != self.settings:
            self.underlay = Keeper(self.settings, clock=self._clock, wall=self._wall)
        self.underlay.keep()
        self._underlay_due = self._clock() + PASS_INTERVAL

    def _bring_mesh_up(self) -> bool:
        """Mesh "tailscale": bring it up once (as ``apply`` does) before the first pass, and
        again after a reload; the passes after that only read its addresses.

        The bring-up (install, ``tailscale up``, waiting for Running: up to minutes) runs in a
        worker thread, so the loop keeps its boot-wait and watchdog promises; its result comes
        back through the results queue and asks for the pass that then writes the config."""
        if self._mesh_busy:
            return False

        settings, gen = self.settings, self._mesh_gen

        def work() -> None:
            try:
                pipeline.mesh_up(settings)
            except Exception as e:  # TailscaleError, or anything unexpected from the mesh
                self._results.put(("mesh", (gen, str(e))))
            else:
                self._results.put(("mesh", (gen, None)))
            self._wake()

        self._mesh_busy = True
        threading.Thread(target=work, name="k3snode-mesh-up", daemon=True).start()
        return False

    def _mesh_done(self, gen: int, error: str | None) -> None:
        self._mesh_busy = False
        if gen != self._mesh_gen:  # settings changed meanwhile: bring up with the new ones
            self.request_pass("mesh settings changed", debounce=0)
            return
        if error is not None:
            self.conditions.bad("mesh", f"mesh: {error}", logging.ERROR)
            self._last_refusal = error
            self._failed_pass(self.settings.mesh, error)
            return
        if self.conditions.good("mesh", f"mesh: {self.settings.mesh} is up"):
            self._last_refusal = None
        self._mesh_ok = True
        self.request_pass("mesh up", debounce=0, quiet=True)

    def _failed_pass(self, check: str, reason: str) -> None:
        self.health.observe(Observation(check, False, reason))
        self._boot_problem = (check, reason)
        if not self._ready:  # keep trying during the boot wait
            self.request_pass("boot retry", debounce=min(1.0, self.settings.daemon.boot_wait))

    def _confirmed(self, addrs: tuple[str, ...], now: float) -> bool:
        delay = self.settings.daemon.confirm_delay
        if delay <= 0:
            return True
        if self.candidate != addrs:
            self.candidate = addrs
            self._candidate_since = now
            log.info(
                "new external address %s (now %s); confirming in %gs",
                ", ".join(addrs) or "none",
                ", ".join(self.current or ()) or "none",
                delay,
            )
            self.request_pass("confirm", debounce=delay)
            return False
        if now - self._candidate_since < delay:
            self.request_pass("confirm", debounce=self._candidate_since + delay - now)
            return False
        log.info("new external address %s confirmed", ", ".join(addrs) or "none")
        return True

    # -- restarting K3s ----------------------------------------------------------------------

    def _restart_result(self, result: RestartResult) -> None:
        """From the restart's worker thread: hand the result to the loop."""
        self._results.put(("restart", result))
        self._wake()

    def _restart_done(self, result: RestartResult) -> None:
        self.restarts.finished(result)
        self.last_restart = {
            "time": self._wall(),
            "unit": result.unit,
            "outcome": result.outcome,
            "detail": result.detail,
            "duration": round(result.duration, 2),
        }
        if self.metrics is not None:
            self.metrics.restarts.labels(result.outcome).inc()
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
        self._health_due = self._clock()

    # -- the registration name -------------------------------------------------------------

    def _registration_keeper(self, settings: Settings) -> Any:
        from k3snode.registration import keeper

        def deliver(outcome: Any) -> None:  # from the update's worker thread
            self._results.put(("registration", outcome))
            self._wake()

        return keeper.for_settings(settings, self._clock, deliver)

    def _registration_done(self, outcome: Any) -> None:
        if self.registration is None:
            return
        self.registration.finished(outcome)
        self.health.observe(self.registration.observation())
        if self.metrics is not None:
            self.metrics.registration_updates.labels("ok" if outcome.ok else "error").inc()
        self._health_due = self._clock()

    # -- health ------------------------------------------------------------------------------

    def _health_interval(self) -> float:
        interval = max(0.5, min(30.0, self.settings.health.grace / 2))
        if self.settings.underlay.enabled:  # report what each underlay pass saw
            from k3snode.mesh.underlay.keeper import PASS_INTERVAL

            interval = min(interval, PASS_INTERVAL)
        return interval

    def _observe_all(self) -> None:
        if self.unconfigured() is not None:
            return  # nothing to watch until the node is configured; "settings" says why
        self._observe_k3s()
        self._observe_rest()

    def _observe_k3s(self) -> None:
        from k3snode.k3s.service import Service

        if self.unconfigured() is not None:
            return
        if not self.restarts.busy:
            st = Service.for_settings(self.settings).state()
            ok = st.active == "active"
            self._k3s_state = st.describe()
            failed_restart = (
                self.last_restart is not None
                and self.last_restart["outcome"] in ("failed", "timeout", "error")
                and not ok
            )
            if not failed_restart:
                self.health.observe(Observation("k3s", ok, st.describe()))
            if self.metrics is not None:
                self.metrics.update(k3s_active=ok)

    def _observe_rest(self) -> None:
        now = self._clock()
        stale_after = 2 * self.settings.daemon.poll_interval + self.settings.health.grace
        if self._last_discovery_ok is not None and now - self._last_discovery_ok > stale_after:
            ago = now - self._last_discovery_ok
            self.health.observe(
                Observation("discovery", False, f"no successful discovery for {ago:.0f}s")
            )
        if self.found is not None:
            try:
                planned = pipeline.plan(self.settings, self.found.external_ips)
            except Exception as e:
                self.health.observe(Observation("config", False, f"cannot render: {e}"))
            else:
                path = planned.file.path
                if planned.keys_changed:
                    what = planned.summary
                    detail = f"{path} differs from what k3snode would write ({what})"
                    self.health.observe(Observation("config", False, detail))
                    if self._pass_due is None:
                        self.request_pass(f"{path} changed by someone else ({what})")
                else:
                    self.health.observe(Observation("config", True, f"{path} is current"))
        from k3snode.health import registry  # here, not at the top: see its docstring

        observed: list[Observation] = []
        if self._observers is None:
            self._observers = registry.observers()
        for observe in self._observers:
            try:
                got = observe(self.settings)
            except Exception as e:
                check = registry.name(observe)
                self.health.observe(Observation(check, False, f"observer failed: {e}"))
                continue
            for obs in got:
                self.health.observe(obs)
                observed.append(obs)
        if self.underlay is not None and self.underlay.seen is not None:
            from k3snode.mesh.underlay import checks as underlay_checks

            keeper = self.underlay  # its judge remembers peers never seen with a handshake
            obs = underlay_checks.observe(self.settings, keeper.seen, peer_judge=keeper.judge)
            self.health.observe(obs)
            observed.append(obs)
        self._observed = observed
        if self.registration is not None:
            self.health.observe(self.registration.observation())

    def _report(self, notify: bool = True) -> str:
        """Observe, then publish: metrics, STATUS=, the status file. Returns the status line."""
        now = self._clock()
        self._observe_all()
        snap = self.snapshot()
        self._log_check_edges(snap)
        if self.metrics is not None:
            self.metrics.update(
                health=snap,
                addresses=tuple(self._address_rows()),
                peers=tuple(self._observed),
                peers_at=self._wall(),
                registration=self._registration_status(),
            )
        line = self.status_line(snap)
        if self._ready and notify:
            self.notifier.status(line)
        try:
            write_status(self.settings.status_file, self.status(snap, line))
        except OSError as e:
            log.warning("cannot write status file %s: %s", self.settings.status_file, e)
        nxt = self.health.next_change()
        interval = self._health_interval()
        self._health_due = now + (min(interval, nxt + 0.05) if nxt is not None else interval)
        return line

    def _log_check_edges(self, snap: Health) -> None:
        """One line when a check turns failing (after its grace period) and one when it is ok
        again; nothing while it stays as it is. -v shows every change of state or detail."""
        for c in snap.checks:
            before = self._check_states.get(c.check)
            key = f"check:{c.check}"
            if c.state == "failing":
                if self.conditions.active(key) is None:
                    self.conditions.bad(key, f"{c.check}: {c.detail}")
                else:
                    self.conditions.bad(key, self.conditions.active(key) or "")
            elif c.state == "ok":
                self.conditions.good(key, f"{c.check}: ok again ({c.detail})")
            if before != c.state:
                log.debug("check %s: %s (%s)", c.check, c.state, c.detail)
            self._check_states[c.check] = c.state

    def _address_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        if self.found is None:
            return rows
        for fam, addr in (("ipv4", self.found.public_ipv4), ("ipv6", self.found.public_ipv6)):
            if addr and addr in (self.current or ()):
                rows.append((addr, fam, self.found.sources.get(fam, "")))
        return rows

    def status_line(self, snap: Health) -> str:
        s = self.settings
        if self._not_configured():
            return str(self._unconfigured)
        if self.found is not None and self.current:
            addrs = self.found.summary()
        elif self.current == ():
            addrs = "no external address"
        else:
            addrs = "no address yet"
        parts = [f"{s.role}, mesh {s.mesh}: {addrs}"]
        if self._k3s_state:
            parts.append(self._k3s_state)
        if self.last_change:
            parts.append(
                "last change " + time.strftime("%H:%M:%S", time.gmtime(self.last_change["time"]))
            )
        if self.registration is not None:
            last = self.registration.last
            state = "pending" if last is None else "published" if last.ok else "update failing"
            parts.append(f"{s.registration.name} {state}")
        if not snap.ok:
            bad = [f"{c.check}: {c.detail}" for c in snap.checks if c.state == "failing"]
            parts.insert(0, "degraded (" + "; ".join(bad) + ")")
        return "; ".join(parts)

    def status(self, snap: Health, line: str) -> dict[str, Any]:
        s = self.settings
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started": self._started_wall,
            "ready": self._ready,
            "role": s.role,
            "mesh": s.mesh,
            "configured": s.configured,
            "settings_file": s.file,
            "env_file": s.env_file,
            "k3s_config": s.k3s.config,
            "k3s_unit": f"{s.k3s.unit}.service",
            "k3s_state": self._k3s_state,
            "addresses": [
                {"address": a, "family": f, "source": src} for a, f, src in self._address_rows()
            ],
            "provider": self.found.provider if self.found is not None else None,
            "candidate": list(self.candidate) if self.candidate is not None else None,
            "last_change": self.last_change,
            "last_restart": self.last_restart,
            "restart_pending": self.restarts.pending,
            "health": snap.to_json(),
            "peers": peer_rows(self._observed, self._wall()),
            "summary": line,
            "health_port": self._server.port if self._server is not None else 0,
            "registration": self._registration_status(),
        }

    def _registration_status(self) -> dict[str, Any] | None:
        return self.registration.status() if self.registration is not None else None

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
        line = self.status_line(snap)
        try:
            write_status(self.settings.status_file, self.status(snap, line))
        except OSError as e:
            log.warning("cannot write status file %s: %s", self.settings.status_file, e)
        self.notifier.ready(line)
        log.info("ready: %s", line)
        if self._running:
            self._start_metrics()
            if self.settings.configured and not self._long_poll_started:
                self._start_long_poll()
        self._health_due = self._clock()  # the full report (observers, K3s's state) next

    # -- reload, signals, edges -----------------------------------------------------------

    def _do_reload(self) -> None:
        from k3snode.config.model import SettingsError
        from k3snode.k3s.configfile import ConfigFileError

        self.notifier.reloading()
        if self._reload is not None:
            try:
                new = self._reload()

                pipeline.check_local(new)
            except (SettingsError, ConfigFileError) as e:
                log.error("reload: %s; keeping the previous settings", e)
                self._settings_error = f"{e} (running on the previous settings)"
                self.health.observe(
                    Observation("settings", False, self._settings_error), immediate=True
                )
            else:
                if (new.registers, new.registration) != (
                    self.settings.registers,
                    self.settings.registration,
                ):
                    self.registration = self._registration_keeper(new)
                    if self.registration is None:
                        self.health.observe(Observation("registration", True, "not publishing"))
                self.settings = new
                self._settings_error = None
                self._judge_settings()
                self.health.grace = new.health.grace
                self._mesh_ok = new.mesh != "tailscale"
                self._mesh_gen += 1
                log.info("reload: settings re-read (%s)", new.file or "no settings file")
                if new.configured:
                    self.health.observe(Observation("settings", True, _settings_read(new)))
                    log.info("configured: %s", new.role)
                    if not self._long_poll_started:
                        self._start_long_poll()
        self.request_pass("reload", debounce=0)
        self._tick_pass_now()
        self.notifier.reloaded(self.status_line(self.snapshot()))

    def _tick_pass_now(self) -> None:
        self._pass_due = None
        self._first_event = None
        self.run_pass()
        self._health_due = self._clock()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def stop(signum: int, _frame: Any) -> None:
            if not self._stop:
                log.info("%s: stopping", signal.Signals(signum).name)
            self._stop = True

        def hup(_signum: int, _frame: Any) -> None:
            self._hup = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _start_health_server(self) -> None:
        """Listen on the health port before READY (so a client that asks right after READY is
        answered); /metrics is empty until ``_start_metrics`` after READY."""
        h = self.settings.health
        if h.port == 0:
            return
        try:
            self._server = HealthServer(h.listen, h.port, self.snapshot, self._render_metrics)
        except OSError as e:
            log.error("health endpoint %s:%s: %s; running without it", h.listen, h.port, e)
            self._server = None
            return
        self._server.start()
        log.info("health endpoint on http://%s:%d/healthz", _host(h.listen), self._server.port)

    def _render_metrics(self) -> bytes:
        metrics = self.metrics
        return metrics.render() if metrics is not None else b""

    def _start_metrics(self) -> None:
        """prometheus-client's registry (its import is the slowest part of a start), with what
        the passes before READY did."""
        if self._server is None:
            return
        try:
            metrics = Metrics()
        except ImportError as e:
            log.error("/metrics needs prometheus-client (%s); serving /healthz only", e)
            return
        if self.found is not None and self.found.duration:
            metrics.discovery_seconds.observe(self.found.duration)
        if self._boot_writes:
            metrics.config_writes.inc(self._boot_writes)
        if self.last_change is not None:
            metrics.update(last_change=self.last_change["time"])
        self.metrics = metrics

    def _open_netlink(self) -> None:
        from k3snode.netwatch import Watch

        try:
            self._nl = Watch()
        except OSError as e:
            log.warning("netlink unavailable (%s); relying on the poll timer", e)

    def _read_netlink(self) -> None:
        try:
            reasons = self._nl.read()
        except OSError as e:
            log.warning("netlink read failed (%s); relying on the poll timer", e)
            with contextlib.suppress(OSError):
                self._nl.close()
            self._nl = None
            return
        if reasons:
            self.request_pass(reasons[-1], quiet=True)

    def _start_long_poll(self) -> None:
        if self.settings.mesh == "tailscale":
            return
        from k3snode import longpoll

        def changed(reason: str) -> None:
            self._results.put(("long-poll", reason))
            self._wake()

        self._long_poll_started = True
        if longpoll.start(self.settings, changed, lambda: self._stop):
            log.info("watching the metadata service for changes (long-poll)")

    def _shutdown(self) -> None:
        self.notifier.stopping()
        if self._server is not None:
            self._server.stop()
        if self._nl is not None:
            with contextlib.suppress(Exception):
                self._nl.close()
        remove_status(self.settings.status_file)
        self.notifier.close()
        with contextlib.suppress(ValueError):
            if threading.current_thread() is threading.main_thread():
                signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        _close_event_loops()
        log.info("stopped")


def _close_event_loops() -> None:
    """pyroute2 (0.9) runs its sockets on an asyncio loop it may leave open in this thread; one
    left to the garbage collector at exit prints a traceback (``BaseEventLoop.__del__``)."""
    import sys

    if "asyncio" not in sys.modules:
        return
    import asyncio

    with contextlib.suppress(Exception):
        policy = asyncio.get_event_loop_policy()
        loop = getattr(getattr(policy, "_local", None), "_loop", None)
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
    import gc

    for obj in gc.get_objects():
        with contextlib.suppress(Exception):
            if (
                isinstance(obj, asyncio.AbstractEventLoop)
                and not obj.is_running()
                and not obj.is_closed()
            ):
                obj.close()


def _settings_read(settings: Settings) -> str:
    read = [p for p in (settings.file, settings.env_file) if p and os.path.exists(p)]
    return "read " + (", ".join(read) if read else "from the environment and flags")


def _host(listen: str) -> str:
    return f"[{listen}]" if ":" in listen else listen


def _discovery_facts(found: Discovery) -> dict[str, str]:
    facts = {}
    if found.provider:
        facts["provider"] = found.provider
    for fam, addr in (("ipv4", found.public_ipv4), ("ipv6", found.public_ipv6)):
        if addr:
            facts[fam] = f"{addr} ({found.sources.get(fam, '?')})"
    return facts
