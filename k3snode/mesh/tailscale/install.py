"""Install Tailscale the way Tailscale documents it, and get ``tailscaled`` running.

- Install: fetch the install script from ``[tailscale] install_url`` (default
  ``https://tailscale.com/install.sh``, the ``curl -fsSL https://tailscale.com/install.sh | sh`` of
  Tailscale's and K3s's docs; settable so tests serve their own) and run it with ``sh``, bounded.
  The script picks the distribution's package repository (apt, dnf, yum, zypper, …). Under
  systemd (k3snode's own unit: ``INVOCATION_ID`` set and ``/run/systemd/system`` present) the script
  runs as the transient unit ``k3snode-tailscale-install.service`` (``systemd-run --wait --pipe``),
  outside k3snode's sandbox, whose read-only ``/usr`` and ``/etc`` no package manager could write;
  ``RuntimeMaxSec`` bounds it. Elsewhere it runs directly with ``sh``.
- Daemon: on a systemd host ``systemctl enable --now tailscaled`` (what the install script does
  too); elsewhere ``tailscaled --state=… --socket=…`` as a detached process, the invocation
  Tailscale documents for hosts without an init system, logging to ``<state_dir>/tailscaled.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Callable

from k3snode import systemd
from k3snode.discovery import http
from k3snode.mesh.tailscale.status import installed, last_line, read_status, scrub
from k3snode.mesh.tailscale.types import Status, TailscaleError
from k3snode.systemd import Notifier

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 30.0
INSTALL_TIMEOUT = 600.0  # the script downloads and installs packages
MAX_SCRIPT = 1 << 20
SYSTEMCTL_TIMEOUT = 90.0
TAILSCALED_STATE = "/var/lib/tailscale/tailscaled.state"
TAILSCALED_SOCKET = "/run/tailscale/tailscaled.sock"
INSTALL_UNIT = "k3snode-tailscale-install"


def fetch_script(url: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The install script's bytes; TailscaleError with the URL and reason on any failure.
    Redirects are followed (as ``curl -fsSL``), only to https:// URLs."""
    try:
        resp = http.fetch(url, timeout, max_body=MAX_SCRIPT, redirects=http.REDIRECTS)
    except http.TooLarge:
        raise TailscaleError(
            f"the Tailscale install script from {url} is larger than 1 MiB; refusing to run it",
            "install-failed",
        ) from None
    except (OSError, ValueError) as e:
        reason = "timed out" if isinstance(e, socket.timeout) else str(e) or type(e).__name__
        raise TailscaleError(
            f"cannot fetch the Tailscale install script from {url}: {reason}", "install-failed"
        ) from None
    if resp.status != 200:
        raise TailscaleError(
            f"cannot fetch the Tailscale install script from {url}: HTTP {resp.status}",
            "install-failed",
        )
    data = resp.body
    if not data.strip() or b"\0" in data:
        raise TailscaleError(
            f"the answer from {url} is not a shell script (empty or binary); refusing to run it",
            "install-failed",
        )
    return data


def install_argv(path: str, timeout: float, transient: bool) -> list[str]:
    """How the stored install script runs: ``sh PATH``, or as a transient systemd unit outside
    k3snode's sandbox, killed by systemd after ``timeout`` seconds (``RuntimeMaxSec``)."""
    if not transient:
        return ["sh", path]
    return [
        "systemd-run",
        "--wait",
        "--pipe",
        "--collect",
        "--quiet",
        f"--unit={INSTALL_UNIT}",
        "--description=Tailscale install script (run by k3snode)",
        f"--property=RuntimeMaxSec={max(1, int(timeout))}s",
        "--setenv=DEBIAN_FRONTEND=noninteractive",
        "/bin/sh",
        path,
    ]


def _stop_install_unit() -> None:
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        systemd.systemctl(["stop", f"{INSTALL_UNIT}.service"], timeout=SYSTEMCTL_TIMEOUT)


def _run_alive(
    argv: list[str], timeout: float, echo: Callable[[str], None] | None = None
) -> tuple[int, str, str]:
    """Run ``argv`` bounded by ``timeout`` (killed then: TimeoutExpired), telling systemd all the
    while that k3snode is alive: an install can outlast the unit's watchdog and start timeout
    (``WATCHDOG=1``, ``EXTEND_TIMEOUT_USEC``; no-ops outside a ``Type=notify`` unit). Each line
    of its output goes to ``echo`` as it comes (progress for the operator)."""
    notifier = Notifier()
    step = min(5.0, notifier.watchdog_interval or 5.0)
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        errors="replace",
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []

    def pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)
            if echo is not None and line.strip():
                echo(line.rstrip("\n"))

    pumps = [
        threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        while True:
            notifier.send("WATCHDOG=1", f"EXTEND_TIMEOUT_USEC={int(step * 3 * 1e6)}")
            left = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(0.0, min(step, left)))
            except subprocess.TimeoutExpired:
                if left <= step:
                    raise
                continue
            for t in pumps:
                t.join(5)
            return proc.returncode, "".join(out), "".join(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notifier.close()


def _echo_install(started: float) -> Callable[[str], None]:
    """The install script's own output, one log line each: prefix and seconds since its start."""

    def echo(line: str) -> None:
        log.info("tailscale install [%3.0f s] %s", time.monotonic() - started, scrub(line))

    return echo


def install(
    settings: Settings, timeout: float = INSTALL_TIMEOUT, transient: bool | None = None
) -> None:
    """Fetch and run Tailscale's install script; afterwards ``tailscale`` must be on PATH.

    ``transient``: run it with ``systemd-run`` (True) or ``sh`` (False); None: under systemd, as a
    service (``systemd.in_unit``) with ``systemd-run`` on PATH.
    """
    url = settings.tailscale.install_url
    if transient is None:
        transient = systemd.in_unit() and shutil.which("systemd-run") is not None
    how = f" as the transient unit {INSTALL_UNIT}.service" if transient else ""
    log.info("tailscale: not installed; running the install script from %s%s", url, how)
    data = fetch_script(url)
    try:
        # The state directory, not /tmp: k3snode's unit has a private /tmp the transient unit
        # cannot see. The directory is 0700 and the file 0600 (sh reads it; nothing executes it).
        os.makedirs(settings.paths.state_dir, mode=0o700, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=".tailscale-install.", suffix=".sh",
                                    dir=settings.paths.state_dir)  # fmt: skip
    except OSError as e:
        raise TailscaleError(f"cannot store the install script: {e}", "install-failed") from None
    argv = install_argv(path, timeout, transient)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        started = time.monotonic()
        try:
            # systemd stops a transient unit at RuntimeMaxSec; ours is the backstop.
            rc, stdout, stderr = _run_alive(
                argv, timeout + (30 if transient else 0), echo=_echo_install(started)
            )
        except subprocess.TimeoutExpired:
            if transient:
                _stop_install_unit()
            raise TailscaleError(
                f"the Tailscale install script from {url} did not finish within {timeout:g}s",
                "install-failed",
            ) from None
        except OSError as e:
            raise TailscaleError(
                f"cannot run {argv[0]} for the install script: {e}", "install-failed"
            ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if rc != 0:
        msg = scrub(last_line(stderr) or last_line(stdout)) or "no output"
        if transient and time.monotonic() - started >= timeout:
            raise TailscaleError(
                f"the Tailscale install script from {url} did not finish within {timeout:g}s "
                f"(stopped by systemd, unit {INSTALL_UNIT}.service): {msg}",
                "install-failed",
            )
        raise TailscaleError(
            f"the Tailscale install script from {url}{how} failed (exit status {rc}): {msg}",
            "install-failed",
        )
    if not installed():
        raise TailscaleError(
            f"the Tailscale install script from {url} succeeded but `tailscale` is not on PATH "
            f"({os.environ.get('PATH', '')})",
            "install-failed",
        )
    log.info("tailscale: installed (%s)", shutil.which("tailscale"))


def start_daemon(settings: Settings) -> subprocess.Popen | None:
    """Enable and start tailscaled (systemd), or start it detached (no systemd: its Popen)."""
    if systemd.booted():
        try:
            out = systemd.systemctl(
                ["enable", "--now", "tailscaled.service"], timeout=SYSTEMCTL_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TailscaleError(
                f"systemctl enable --now tailscaled failed: {e}", "daemon"
            ) from None
        if out.returncode != 0:
            raise TailscaleError(
                "systemctl enable --now tailscaled failed: "
                f"{last_line(out.stderr) or out.returncode}; see journalctl -u tailscaled",
                "daemon",
            )
        log.info("tailscale: enabled and started tailscaled.service")
        return None
    exe = shutil.which("tailscaled")
    if not exe:
        raise TailscaleError(
            "tailscaled is not installed (tailscale is, but its daemon is missing from PATH)",
            "daemon",
        )
    logfile = os.path.join(settings.paths.state_dir, "tailscaled.log")
    try:
        os.makedirs(settings.paths.state_dir, mode=0o700, exist_ok=True)
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as e:
        raise TailscaleError(f"cannot open tailscaled's log {logfile}: {e}", "daemon") from None
    try:
        proc = subprocess.Popen(
            [exe, f"--state={TAILSCALED_STATE}", f"--socket={TAILSCALED_SOCKET}"],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        raise TailscaleError(f"cannot start tailscaled: {e}", "daemon") from None
    finally:
        os.close(fd)
    log.info("tailscale: no systemd; started tailscaled (pid %d, log %s)", proc.pid, logfile)
    return proc


def wait_daemon(
    settings: Settings,
    proc: subprocess.Popen | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Status:
    """Poll until tailscaled answers ``tailscale status``, at most ``[tailscale] timeout``."""
    deadline = monotonic() + settings.tailscale.timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise TailscaleError(
                f"tailscaled exited with status {proc.returncode} right after starting; see "
                f"{os.path.join(settings.paths.state_dir, 'tailscaled.log')}",
                "daemon",
            )
        try:
            return read_status()
        except TailscaleError as e:
            if e.kind != "daemon" or monotonic() >= deadline:
                raise TailscaleError(
                    f"tailscaled did not answer within {settings.tailscale.timeout:g}s: {e}",
                    "daemon",
                ) from None
        sleep(0.2)
