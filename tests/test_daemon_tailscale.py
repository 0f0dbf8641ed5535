"""``k3snode run`` with mesh "tailscale": the bring-up runs beside the loop, not in it (issue 15,
finding 2). A real daemon process in a network namespace, a real notify socket, the stub
``tailscale`` whose ``up`` hangs far longer than the watchdog interval and the boot wait.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from daemon_node import make_node
from helpers import wait_for
from tailscale_stub import KEY, TailscaleStub

pytestmark = pytest.mark.netns


def _up_processes(keyfile: str) -> list[int]:
    """Live ``tailscale up`` processes logging in with this key file."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "up" in argv and f"--auth-key=file:{keyfile}" in argv:
            out.append(int(pid))
    return out


def test_slow_tailscale_up_delays_neither_ready_nor_the_watchdog(tmp_path):
    """Fails before this branch: ``tailscale up`` (up to timeout + 15 s) and the wait for Running
    ran inside the loop, so READY=1 came only after it (here: 60 s against a 2 s boot wait) and
    no WATCHDOG=1 was sent meanwhile."""
    (tmp_path / "ts").mkdir()
    ts = TailscaleStub.create(tmp_path / "ts")
    ts.control(daemon="running", keys={KEY: "hang"})
    keyfile = tmp_path / "ts.key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    extra = f'[tailscale]\nauth_key_file = "{keyfile}"\ntimeout = 45\n'
    try:
        with make_node(
            tmp_path,
            mesh="tailscale",
            extra_toml=extra,
            daemon={"boot_wait": 2.0},
            env_extra={"WATCHDOG_USEC": "500000", "TAILSCALE_STUB_DIR": str(ts.dir)},
        ) as node:
            node.env_extra["PATH"] = f"{ts.bin}{os.pathsep}{node.root}/bin{os.pathsep}/usr/bin:/bin"
            node.start(wait_ready=False)
            wait_for(lambda: _up_processes(str(keyfile)), 20, what="k3snode's tailscale up")
            node.notify.wait("READY=1", timeout=20)
            assert _up_processes(str(keyfile)), "READY=1 came while tailscale up was still running"
            wait_for(
                lambda: sum("WATCHDOG=1" in m for m in node.notify.drain(0.1)) >= 3,
                10,
                what="three WATCHDOG=1 pings",
            )
            assert _up_processes(str(keyfile)), (
                "the pings came while tailscale up was still running"
            )
            node.notify.messages.clear()
            node.signal(signal.SIGHUP)  # a reload asks for a bring-up again: still off the loop
            node.notify.wait("RELOADING=1", timeout=10)
            wait_for(
                lambda: sum("WATCHDOG=1" in m for m in node.notify.drain(0.1)) >= 3,
                10,
                what="three WATCHDOG=1 pings after the reload",
            )
            st = node.status_json()
            assert st["ready"] is True
            assert node.stop() == 0
    finally:
        for pid in _up_processes(str(keyfile)):  # outlives k3snode outside a cgroup
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_tailscale_down_while_k3s_runs_is_brought_back_by_the_next_pass(tmp_path):
    """Someone runs ``tailscale down`` on a node whose K3s set its routes: the next pass finds no
    Tailscale address and the one after brings the node back with a bare ``tailscale up`` — the
    settings, K3s's routes among them, untouched (no reload needed)."""
    (tmp_path / "ts").mkdir()
    ts = TailscaleStub.create(tmp_path / "ts")
    ts.control(daemon="running", keys={KEY: "ok"})
    keyfile = tmp_path / "ts.key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    extra = f'[tailscale]\nauth_key_file = "{keyfile}"\ntimeout = 20\n'
    with make_node(
        tmp_path,
        mesh="tailscale",
        extra_toml=extra,
        daemon={"poll_interval": 5.0},
        env_extra={"TAILSCALE_STUB_DIR": str(ts.dir)},
    ) as node:
        node.env_extra["PATH"] = f"{ts.bin}{os.pathsep}{node.root}/bin{os.pathsep}/usr/bin:/bin"
        node.start(wait_ready=False)
        try:
            node.notify.wait("READY=1", timeout=30)
        except AssertionError:
            raise AssertionError(node.output()[-3000:]) from None
        assert ts.cli("set", "--accept-routes", "--advertise-routes=10.42.0.0/24").returncode == 0
        before = ts.prefs()
        assert ts.cli("down").returncode == 0
        wait_for(lambda: ts.status()["BackendState"] == "Running", 30, what="Tailscale back up")
        ups = [c["argv"] for c in ts.calls("tailscale") if c["argv"][:1] == ["up"]]
        assert ups[-1] == ["up"]
        assert ts.prefs() == before
        assert node.stop() == 0
