"""Real WireGuard for tests: wireguard-go processes in network namespaces, owned by the test.

Each interface name comes from ``unique_name`` because wireguard-go's UAPI socket path
(``/var/run/wireguard/<ifname>.sock``) is global, not per namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
from helpers import NetNS, have, unique_name, wait_for

SOCKET_DIR = "/var/run/wireguard"


def need_wireguard_go() -> None:
    if not have("wireguard-go", "ping"):
        pytest.skip("needs wireguard-go and ping (tests/apt-packages.txt)")


@contextlib.contextmanager
def wireguard_go(ns: NetNS, ifname: str | None = None) -> Iterator[str]:
    """Run ``wireguard-go -f IFNAME`` in ``ns`` (foreground: we own its PID); yield the name."""
    ifname = ifname or unique_name("wg")
    proc = ns.popen(
        ["wireguard-go", "-f", ifname],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LOG_LEVEL": "error"},
    )
    sock = os.path.join(SOCKET_DIR, f"{ifname}.sock")
    try:
        wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, what=sock)
        assert proc.poll() is None, f"wireguard-go {ifname} exited with {proc.returncode}"
        yield ifname
    finally:
        stop(proc)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock)


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started (by its PID), waiting for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ping(ns: NetNS, address: str, count: int = 1, wait: float = 2) -> bool:
    r = ns.exec("ping", "-n", "-c", str(count), "-W", str(wait), address, check=False)
    return r.returncode == 0


def ping_within(ns: NetNS, address: str, timeout: float = 15) -> bool:
    """True once one ping gets a reply; False after ``timeout`` (a handshake retry takes 5 s)."""
    try:
        wait_for(lambda: ping(ns, address, wait=1), timeout=timeout, interval=0.2, what=address)
    except AssertionError:
        return False
    return True
