"""Bring Tailscale to ``Running`` before K3s starts, in a way that K3s's own steps never undo.

What the two programs do (docs/tailscale.md has the details and line references):

- K3s (``pkg/vpn/vpn.go`` ``StartVPN``, k3s-io/k3s 66a14f0e): ``tailscale status --json``; when
  ``BackendState`` is ``Running`` nothing, otherwise ``tailscale up --authkey KEY --timeout=30s
  --reset [--login-server URL] [extraArgs…]``. Its flannel backend (``pkg/agent/flannel/setup.go``)
  then runs ``tailscale set --accept-routes --advertise-routes=<pod CIDRs>,<routes already
  advertised>`` at every start.
- Tailscale (tailscale/tailscale 1.103, de9ec7ee): tailscaled says ``NoState`` from its start
  until the first netmap, ``Stopped`` at once when logged in with ``WantRunning`` off
  (``ipn/ipnlocal/local.go`` ``nextStateLocked``); ``tailscale up`` without ``--reset`` refuses
  to drop a non-default setting it is not given (``cmd/tailscale/cli/up.go``
  ``checkForAccidentalSettingReverts``), except a bare ``tailscale up`` — no flag at all — on a
  logged-in node, which only sets ``WantRunning``.

So, by ``BackendState``:

==================  ============================================================================
NoState, Starting   wait, at most ``[tailscale] timeout`` (then a one-line error; the next pass
                    tries again)
Running             nothing (and K3s skips its own ``up``)
Stopped             a bare ``tailscale up`` (the settings stay as they are)
NeedsMachineAuth    wait for the admin, bounded
NeedsLogin, other   ``tailscale up --reset --auth-key=file:KEY --timeout=Ns [--login-server=URL]
                    [--hostname=NAME] [--accept-routes] [--advertise-routes=…] [extra_args…]``:
                    the command K3s would run (same key, login server, hostname and extra args,
                    which k3snode also hands K3s in ``vpn-auth``'s ``extraArgs``), plus the two
                    settings K3s's flannel backend made, read from ``tailscale debug prefs`` — so
                    pod routes keep flowing, and K3s's next ``up --reset`` + ``set`` lands on the
                    same settings.
==================  ============================================================================
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import TYPE_CHECKING, Callable

from k3snode.mesh.tailscale import install
from k3snode.mesh.tailscale.progress import Watch
from k3snode.mesh.tailscale.status import installed, read_key, read_status, run_cli, scrub
from k3snode.mesh.tailscale.types import Status, TailscaleError, TailscaleState
from k3snode.mesh.tailscale.up_args import k3s_prefs, login_args
from k3snode.mesh.tailscale.version import check_version
from k3snode.progress import Step
from k3snode.secret import Secret

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between status polls while waiting
UNSETTLED = ("NoState", "Starting")


# ---------------------------------------------------------------------------------------------
# Failures


def _rejected(settings: Settings, why: str) -> TailscaleError:
    return TailscaleError(
        f"Tailscale rejected the auth key in {settings.tailscale.auth_key_file} (expired, revoked, "
        f"single-use and already used, or mistyped): {why}; put a valid (reusable) key in that file",
        "bad-key",
    )


def _error_line(text: str) -> str:
    """The line of Tailscale's output that says what went wrong: the first error line, else the
    last line (``tailscale up`` prints login/approval URLs before its error)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith(("error", "backend error")):
            return ln
    return lines[-1] if lines else ""


def _status_or_none(secret: Secret | None) -> Status | None:
    try:
        return read_status(secret=secret)
    except TailscaleError:
        return None


def _up_failure(settings: Settings, rc: int, stderr: str, key: Secret | None) -> TailscaleError:
    ts = settings.tailscale
    full = scrub(stderr, key)
    low = " ".join(full.lower().split())
    msg = _error_line(full) or f"exit status {rc}"
    if "invalid key" in low or "api key" in low:
        return _rejected(settings, msg)
    if "timeout waiting" in low:
        return timeout_error(settings, _status_or_none(key))
    if msg.startswith("open ") and ts.auth_key_file in msg:
        return TailscaleError(f"tailscale cannot read the auth key file: {msg}", "bad-key")
    if "failed to connect to local tailscaled" in low:
        return TailscaleError(f"tailscaled stopped answering: {msg}", "daemon")
    if "--force-reauth" in low:
        return TailscaleError(
            f'tailscale up refused: {msg}; add "--force-reauth" to [tailscale] extra_args to move '
            "this node to the new control server",
            "failed",
        )
    return TailscaleError(f"tailscale up failed (exit status {rc}): {msg}", "failed")


def timeout_error(settings: Settings, st: Status | None) -> TailscaleError:
    t = settings.tailscale.timeout
    state = st.backend_state if st else "unknown"
    if st and st.backend_state == "NeedsMachineAuth":
        return TailscaleError(
            f"Tailscale is waiting for an admin to approve this machine (BackendState "
            f"NeedsMachineAuth after {t:g}s); approve it in the admin console or use a "
            "pre-approved auth key",
            "machine-auth",
        )
    if st and st.login_error:
        return _rejected(settings, scrub(st.login_error, read_key(settings)))
    if st and st.backend_state == "NeedsLogin":
        return TailscaleError(
            f"Tailscale did not reach Running within {t:g}s (still BackendState NeedsLogin); "
            f"check the auth key in {settings.tailscale.auth_key_file} and the control server",
            "needs-login",
        )
    if st and st.backend_state == "NoState":
        return TailscaleError(
            f"Tailscale did not settle within {t:g}s (BackendState NoState: tailscaled has not "
            "heard from its control server since it started); check its network and "
            "`tailscale status`",
            "timeout",
        )
    return TailscaleError(
        f"Tailscale did not reach Running within {t:g}s (BackendState {state}); raise "
        "[tailscale] timeout or check `tailscale status`",
        "timeout",
    )


# ---------------------------------------------------------------------------------------------
# Steps


def _poll(
    settings: Settings,
    done: Callable[[Status], bool],
    key: Secret | None,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    alive: Callable[[], bool] = lambda: True,
) -> Status | None:
    """Read ``tailscale status --json`` until ``done`` (or ``alive`` turns false), at most
    ``[tailscale] timeout`` seconds; the last status read (None if tailscaled never answered)."""
    deadline = monotonic() + settings.tailscale.timeout
    st: Status | None = None
    while True:
        try:
            st = read_status(secret=key)
        except TailscaleError as e:
            if e.kind != "daemon":
                raise
            st = None
        if st is not None and done(st):
            return st
        if monotonic() >= deadline or not alive():
            return st
        sleep(POLL)


def settle(
    settings: Settings,
    st: Status,
    key: Secret | None,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> Status:
    """Wait out NoState (tailscaled has no netmap yet) and Starting, bounded."""
    if st.backend_state not in UNSETTLED:
        return st
    log.info("tailscale: BackendState %s; waiting for it to settle", st.backend_state)
    got = _poll(settings, lambda s: s.backend_state not in UNSETTLED, key, monotonic, sleep)
    if got is None or got.backend_state in UNSETTLED:
        raise timeout_error(settings, got)
    return got


def resume(
    settings: Settings,
    key: Secret | None,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
) -> Status:
    """Stopped (logged in, ``WantRunning`` off): a bare ``tailscale up`` — any flag, even
    ``--timeout``, would make it a settings change that Tailscale checks against every non-default
    setting. A bare ``up`` waits for Running without end, so k3snode watches the status itself
    and ends it once the state has moved on (the setting is made by then)."""
    log.info("tailscale: Stopped; a bare `tailscale up` to resume with the settings it has")
    try:
        proc = subprocess.Popen(
            ["tailscale", "up"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as e:
        raise TailscaleError(f"cannot run tailscale up: {e}") from None
    try:
        st = _poll(
            settings,
            lambda s: s.backend_state not in ("Stopped", *UNSETTLED),
            key,
            monotonic,
            sleep,
            alive=lambda: proc.poll() is None,
        )
    finally:
        ended_by_us = proc.poll() is None  # then its exit status says only that it was stopped
        if ended_by_us:
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if not ended_by_us and proc.returncode != 0:
        raise _up_failure(settings, proc.returncode, err or "", key)
    if not ended_by_us and (st is None or st.backend_state != "Running"):
        st = _status_or_none(key) or st  # `up` ended on its own: Running, maybe after the last read
    if st is None or st.backend_state in ("Stopped", *UNSETTLED):
        raise timeout_error(settings, st)
    return st


def login(settings: Settings, key: Secret | None) -> None:
    """``tailscale up --reset --auth-key=file:…`` plus what K3s's flannel backend set."""
    ts = settings.tailscale
    carried = k3s_prefs(key)
    log.info(
        "tailscale: needs to log in; tailscale up --reset with the auth key file %s%s%s",
        ts.auth_key_file,
        f" (login server {ts.control_server_url})" if ts.control_server_url else "",
        f", keeping K3s's {' '.join(carried)}" if carried else "",
    )
    try:
        with Step(log, f"tailscale up: waiting for Running (up to {ts.timeout:g} s)") as step:
            with Watch(key, ts.control_server_url):
                out = run_cli(login_args(settings, carried), ts.timeout + 15)
            step.result("finished" if out.returncode == 0 else f"exit status {out.returncode}")
    except subprocess.TimeoutExpired:
        raise timeout_error(settings, _status_or_none(key)) from None
    except OSError as e:
        raise TailscaleError(f"cannot run tailscale up: {e}") from None
    if out.returncode != 0:
        raise _up_failure(settings, out.returncode, out.stderr, key)


def wait_running(
    settings: Settings,
    key: Secret | None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Status:
    """Until Running, at most ``[tailscale] timeout``; a login error ends the wait at once."""

    def done(s: Status) -> bool:
        return s.backend_state == "Running" or (
            s.backend_state == "NeedsLogin" and bool(s.login_error)
        )

    st = _poll(settings, done, key, monotonic, sleep)
    if st is None or st.backend_state != "Running":
        raise timeout_error(settings, st)
    return st


def ensure_up(
    settings: Settings,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TailscaleState:
    """Install, start tailscaled, settle, then what the state asks for (module docstring); the
    node's Tailscale addresses. Raises TailscaleError with one line that says what to do."""
    ts = settings.tailscale
    did_install = False
    if not installed():
        if not ts.install:
            raise TailscaleError(
                "tailscale is not installed and [tailscale] install = false; install it "
                "(https://tailscale.com/download) or set install = true",
                "not-installed",
            )
        install.install(settings)
        did_install = True
    check_version()
    key = read_key(settings)
    started = False
    try:
        st = read_status(secret=key)
    except TailscaleError as e:
        if e.kind != "daemon":
            raise
        log.info("tailscale: %s; starting tailscaled", e)
        proc = install.start_daemon(settings)
        started = True
        st = install.wait_daemon(settings, proc, monotonic, sleep)
    st = settle(settings, st, key, monotonic, sleep)
    brought_up = False
    if st.backend_state == "Stopped":
        st = resume(settings, key, monotonic, sleep)
        brought_up = True
    if st.backend_state == "NeedsMachineAuth":
        st = wait_running(settings, key, monotonic, sleep)
    elif st.backend_state != "Running":
        login(settings, key)
        brought_up = True
        st = wait_running(settings, key, monotonic, sleep)
    if not (st.ipv4 or st.ipv6):
        raise TailscaleError(
            "Tailscale is Running but reports no Tailscale address (TailscaleIPs is empty)",
            "no-address",
        )
    state = TailscaleState(
        backend_state=st.backend_state,
        ipv4=st.ipv4,
        ipv6=st.ipv6,
        hostname=st.hostname,
        installed=did_install,
        daemon_started=started,
        brought_up=brought_up,
    )
    log.info(
        "tailscale: Running as %s with %s (%s)",
        st.hostname or "?",
        ", ".join(state.addresses),
        "brought up by k3snode" if brought_up else "already up",
    )
    return state
