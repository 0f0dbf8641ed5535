"""Finding 1: local clients cannot exhaust the daemon through the health port.

A real ``k3snode run`` in a network namespace; a second process opens hundreds of connections
that each send a partial request line and then hold. The daemon's fds, threads and RSS are read
from ``/proc`` while the flood lasts; the watchdog keeps being fed and ``/healthz`` answers again
once the slow clients are cut off.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from daemon_node import make_node
from helpers import wait_for

from k3snode.health import server

pytestmark = pytest.mark.netns

FLOOD = r"""
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        s.send(b"GET /heal")
    except OSError:
        s.close()
        continue
    held.append(s)
print(len(held), flush=True)
time.sleep(120)
"""


def _proc(pid: int) -> tuple[int, int, int]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, threads, rss


def test_slow_client_flood_is_bounded_and_the_watchdog_keeps_running(tmp_path):
    with make_node(tmp_path, health_port=-1, env_extra={"WATCHDOG_USEC": "1000000"}) as node:
        node.start()
        pid = node.proc.pid
        assert node.http("/healthz")[0] == 200  # the server thread exists before the baseline
        fds0, threads0, rss0 = _proc(pid)
        flood = node.ns.popen(
            [sys.executable, "-c", FLOOD, str(node.health_port), "600"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            opened = int(flood.stdout.readline())
            assert opened >= server.MAX_CONNECTIONS
            node.notify.drain(0.1)
            watchdog_before = sum("WATCHDOG=1" in m for m in node.notify.messages)
            peak = (0, 0, 0)
            end = time.monotonic() + server.CONNECTION_DEADLINE + 3
            while time.monotonic() < end:
                peak = tuple(max(a, b) for a, b in zip(peak, _proc(pid)))
                time.sleep(0.1)
            fds, threads, rss = peak
            print(
                f"flood of {opened}: fds {fds0}->{fds}, threads {threads0}->{threads}, "
                f"RSS {rss0}->{rss} KiB"
            )
            assert fds <= fds0 + server.MAX_CONNECTIONS + 4, (fds0, fds)
            assert threads <= threads0 + server.MAX_CONNECTIONS + 1, (threads0, threads)
            assert rss - rss0 < 30 * 1024, (rss0, rss)
            node.notify.drain(0.1)
            fed = sum("WATCHDOG=1" in m for m in node.notify.messages) - watchdog_before
            assert fed >= 4, f"only {fed} WATCHDOG=1 in {server.CONNECTION_DEADLINE + 3:.0f}s"
            # A reload during the flood is handled without an error.
            node.signal(signal.SIGHUP)
            time.sleep(1)
            assert node.proc.poll() is None
        finally:
            flood.kill()
            flood.wait()
        wait_for(
            lambda: node.http("/healthz")[0] == 200,
            server.CONNECTION_DEADLINE + 5,
            what="/healthz answering after the flood",
        )
        assert node.stop() == 0
        out = node.output()
        assert "Traceback" not in out and "Too many open files" not in out, out[-2000:]
