"""The daemon's timing rules driven by a test clock: confirmation, the restart rate limit, the boot
wait, no restart loop. Real settings files, real config writes, a stub ``systemctl`` executable;
only time is simulated (``Daemon.tick`` at chosen instants), so minutes pass in milliseconds."""

from __future__ import annotations

import json
import os

import pytest
from helpers import REPO

from k3snode.config.load import load
from k3snode.config.model import Settings
from k3snode.daemon.loop import Daemon

STUB = os.path.join(REPO, "tests", "fakes", "systemctl.py")
RUNNING = {"load": "loaded", "active": "active", "sub": "running", "invocation": 1}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class World:
    def __init__(self, root, monkeypatch, unit=RUNNING) -> None:
        self.root = root
        (root / "bin").mkdir()
        os.symlink(STUB, root / "bin" / "systemctl")
        self.state = root / "systemctl.json"
        self.log = root / "systemctl.log"
        self.config = root / "etc/rancher/k3s/config.yaml"
        self.state.write_text(json.dumps({"units": {"k3s.service": unit}}))
        monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("STUB_SYSTEMCTL_STATE", str(self.state))
        monkeypatch.setenv("STUB_SYSTEMCTL_LOG", str(self.log))
        monkeypatch.setenv("STUB_K3S_CONFIG", str(self.config))
        self.clock = Clock()
        self.file = root / "etc/k3snode/config.toml"

    def settings(self, ipv4: str, **daemon) -> Settings:
        d = {"confirm_delay": 3.0, "min_restart_interval": 60.0, "boot_wait": 30.0, **daemon}
        self.file.write_text(
            f"""[node]
role = "server"
mesh = "none"
[k3s]
config = "{self.config}"
[discovery]
external_ips = ["{ipv4}", "2a01:4f8::5"]
[daemon]
{chr(10).join(f"{k} = {v}" for k, v in d.items())}
[health]
port = 0
grace = 10
[paths]
state_dir = "{self.root}/var/lib/k3snode"
run_dir = "{self.root}/run/k3snode"
"""
        )
        return load(str(self.file), env={})

    def daemon(self, ipv4: str, **daemon) -> Daemon:
        self.settings(ipv4, **daemon)
        return Daemon(
            load(str(self.file), env={}),
            reload=lambda: load(str(self.file), env={}),
            clock=self.clock,
            wall=self.clock,
            env={},
            netlink=False,
        )

    def restarts(self) -> list[dict]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [c for c in calls if c["argv"][0] == "restart"]

    def written(self) -> str:
        return self.config.read_text() if self.config.exists() else ""

    def step(self, d: Daemon, seconds: float) -> None:
        self.clock.t += seconds
        d.tick()
        d.restarts.join(30)
        d.tick()  # the restart's result


@pytest.fixture
def world(tmp_path, monkeypatch):
    for sub in ("etc/k3snode", "etc/rancher/k3s", "var/lib/k3snode", "run/k3snode"):
        (tmp_path / sub).mkdir(parents=True)
    return World(tmp_path, monkeypatch)


def test_a_new_address_waits_for_confirmation(world):
    d = world.daemon("5.6.7.8")
    world.step(d, 0)
    assert "5.6.7.8" in world.written() and len(world.restarts()) == 1
    world.settings("9.9.9.9")
    d.reload()
    world.step(d, 0)
    assert "5.6.7.8" in world.written() and d.addresses.candidate == ("9.9.9.9", "2a01:4f8::5")
    world.step(d, 1.0)
    assert "5.6.7.8" in world.written(), "not before the confirm delay"
    world.step(d, 2.1)
    assert "9.9.9.9" in world.written()
    assert d.addresses.candidate is None


def test_restarts_are_rate_limited_and_the_last_config_wins(world):
    d = world.daemon("5.6.7.8", confirm_delay=0)
    world.step(d, 0)
    assert len(world.restarts()) == 1
    for t, ip in ((10, "9.9.9.9"), (20, "8.8.4.4")):
        world.settings(ip, confirm_delay=0)
        d.reload()
        world.step(d, t)
        assert ip in world.written()
        assert len(world.restarts()) == 1, "deferred: at most one restart per minute"
        assert d.restarts.pending
    world.step(d, 29)  # t = 1059: still inside the minute
    assert len(world.restarts()) == 1
    world.step(d, 1.5)  # t = 1060.5
    assert len(world.restarts()) == 2
    assert "8.8.4.4" in world.restarts()[-1]["config"]
    world.step(d, 600)
    assert len(world.restarts()) == 2, "nothing changed since: no restart"


def test_a_failed_restart_is_reported_and_not_retried(world):
    world.state.write_text(
        json.dumps({"units": {"k3s.service": {**RUNNING, "after_restart": "failed"}}})
    )
    d = world.daemon("5.6.7.8", min_restart_interval=1)
    world.step(d, 0)
    assert d.last_restart["outcome"] == "failed"
    for _ in range(5):
        d.reload()
        world.step(d, 120)
    assert len(world.restarts()) == 1
    snap = d.health.snapshot()
    assert snap.status == "degraded"
    assert any(c.check == "k3s" and "failed" in c.detail for c in snap.failing())


def test_the_poll_timer_asks_for_a_pass_with_jitter(world):
    d = world.daemon("5.6.7.8", poll_interval=300)
    world.step(d, 0)
    first = d.passes
    world.step(d, 200)
    assert d.passes == first, "no pass before the poll interval"
    world.step(d, 140)  # beyond 300 s + 10 % jitter
    assert d.passes == first + 1


def test_boot_wait_makes_the_daemon_ready_degraded(world):
    """Passes that cannot write (here: the config path is a directory) hold READY back only for
    the boot wait; then the daemon is ready, degraded, saying why."""
    d = world.daemon("5.6.7.8", boot_wait=5)
    world.config.mkdir()
    world.step(d, 0)
    assert not d.ready
    world.step(d, 2)
    assert not d.ready and d.passes >= 2, "retried during the boot wait"
    world.step(d, 3.1)
    assert d.ready
    snap = d.health.snapshot()
    assert snap.status == "degraded"
    assert any(c.check == "config" and "cannot write" in c.detail for c in snap.failing())
    assert world.restarts() == []
