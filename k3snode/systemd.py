"""Everything k3snode asks of systemd, in one place: sd_notify, "am I a unit", and the one
``systemctl`` runner.

sd_notify is written by hand (a datagram of ``KEY=value`` lines to ``NOTIFY_SOCKET``): the
library alternatives (python3-systemd's ``daemon.notify``) link libsystemd and are not on every
target (RHEL's EPEL lacks them for some Pythons), while the protocol is 20 lines. systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to a
``Type=notify`` unit; each message is one datagram of ``KEY=value`` lines. Without the variable
every call is a no-op, so ``k3snode run`` behaves the same outside systemd. ``WATCHDOG_USEC``
(and ``WATCHDOG_PID``, when set, naming this process) says how often ``WATCHDOG=1`` is due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

BOOTED = "/run/systemd/system"  # exists when systemd is PID 1 (sd_booted(3))
SYSTEMCTL_TIMEOUT = 30.0


def booted(path: str = BOOTED) -> bool:
    """sd_booted(3): systemd is PID 1 and ``systemctl`` is on PATH."""
    return os.path.isdir(path) and shutil.which("systemctl") is not None


def in_unit(environ: Mapping[str, str] | None = None, booted_path: str = BOOTED) -> bool:
    """k3snode runs as a systemd service: systemd sets ``INVOCATION_ID`` for every unit's
    processes (systemd.exec(5)) and ``/run/systemd/system`` exists when systemd is PID 1."""
    env = os.environ if environ is None else environ
    return bool(env.get("INVOCATION_ID")) and os.path.isdir(booted_path)


def systemctl(
    args: Sequence[str], timeout: float = SYSTEMCTL_TIMEOUT, binary: str = "systemctl"
) -> subprocess.CompletedProcess:
    """Run ``systemctl ARGS`` with a deadline, capturing text output; raises OSError (not found)
    or ``subprocess.TimeoutExpired``. Never a shell, never a secret in ``args``."""
    return subprocess.run(
        [binary, *args],
        stdin=subprocess.DEVNULL,  # never a password prompt on a terminal
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING/RELOADING; never raises (systemd may be gone)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if address.startswith("@"):
            self._address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._address = address
        self._sock: socket.socket | None = None
        self._last_status = ""
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block: a reader that stopped reading must not stall the daemon's loop.
            self._sock.sendto("\n".join(lines).encode(), socket.MSG_DONTWAIT, self._address)
            return True
        except OSError as e:
            log.debug("sd_notify %s failed: %s", lines[0].split("=")[0], e)
            return False

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Send STATUS= only when the line changed."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def reloading(self) -> None:
        # MONOTONIC_USEC: what systemd 253+ wants with RELOADING=1 (Type=notify-reload)
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading settings")

    def reloaded(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def _watchdog_interval(env: dict[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not asked for."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2
