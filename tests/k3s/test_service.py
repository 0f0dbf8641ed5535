"""K3s's unit control against a stub ``systemctl`` executable (records argv, answers ``show``),
and ``k3snode apply`` restarting K3s only when its write changed what K3s reads."""

from __future__ import annotations

import json
import os
import shutil
from typing import ClassVar

import pytest
from helpers import REPO, clean_env, run_k3snode

from k3snode.k3s.service import Service

STUB = os.path.join(REPO, "tests", "fakes", "systemctl.py")
RUNNING = {"load": "loaded", "active": "active", "sub": "running", "invocation": 1}


@pytest.fixture
def stub(tmp_path, monkeypatch):
    """The stub on PATH (and its files in the environment) for this test's processes."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(STUB, bindir / "systemctl")
    state, log = tmp_path / "systemctl.json", tmp_path / "systemctl.log"

    class Stub:
        path = str(bindir / "systemctl")
        env: ClassVar[dict[str, str]] = {
            "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
            "STUB_SYSTEMCTL_STATE": str(state),
            "STUB_SYSTEMCTL_LOG": str(log),
        }

        def units(self, **units):
            state.write_text(json.dumps({"units": units}))

        def calls(self):
            if not log.exists():
                return []
            return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

        def verbs(self):
            return [a[0] for a in self.calls()]

    for k, v in Stub.env.items():
        monkeypatch.setenv(k, v)
    s = Stub()
    s.units()
    return s


def test_restart_without_blocking_and_wait_for_the_new_run(stub):
    stub.units(**{"k3s.service": RUNNING})
    r = Service("k3s.service", systemctl=stub.path, poll=0.05).restart_if_running(10)
    assert r.outcome == "restarted", r.detail
    assert ["restart", "--no-block", "k3s.service"] in stub.calls()


def test_a_unit_that_fails_after_restart_is_failed(stub):
    stub.units(**{"k3s.service": {**RUNNING, "after_restart": "failed"}})
    r = Service("k3s.service", systemctl=stub.path, poll=0.05).restart_if_running(10)
    assert r.outcome == "failed" and "failed after restart" in r.detail


def test_a_unit_still_starting_at_the_deadline_times_out(stub):
    stub.units(**{"k3s.service": {**RUNNING, "after_restart": "slow", "slow_for": 60}})
    r = Service("k3s.service", systemctl=stub.path, poll=0.05).restart_if_running(0.5)
    assert r.outcome == "timeout"
    assert "activating" in r.detail
    assert stub.verbs().count("restart") == 1


@pytest.mark.parametrize(
    ("unit", "outcome"),
    [
        ({**RUNNING, "active": "inactive", "sub": "dead"}, "not-running"),
        ({**RUNNING, "active": "failed", "sub": "failed"}, "not-running"),
        ({**RUNNING, "active": "activating", "sub": "auto-restart"}, "not-running"),
        (None, "not-installed"),
    ],
)
def test_a_unit_that_is_not_running_is_never_started(stub, unit, outcome):
    stub.units(**({"k3s.service": unit} if unit else {}))
    r = Service("k3s.service", systemctl=stub.path).restart_if_running(5)
    assert r.outcome == outcome
    assert set(stub.verbs()) == {"show"}


def test_a_starting_unit_is_restarted(stub):
    """Activating (K3s waiting for its server) read the old config: restart it."""
    stub.units(**{"k3s.service": {**RUNNING, "active": "activating", "sub": "start"}})
    r = Service("k3s.service", systemctl=stub.path, poll=0.05).restart_if_running(5)
    assert r.outcome == "restarted"


def test_missing_systemctl_is_an_error(tmp_path):
    r = Service("k3s.service", systemctl=str(tmp_path / "nope")).restart_if_running(5)
    assert r.outcome == "error" and "systemctl not found" in r.detail


@pytest.mark.skipif(
    os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"),
    reason="needs a host where systemctl exists but systemd is not PID 1",
)
def test_without_systemd_nothing_is_restarted():
    r = Service("k3s.service", systemctl=shutil.which("systemctl")).restart_if_running(5)
    assert r.outcome == "not-running" and "systemd is not running" in r.detail


# -- k3snode apply -------------------------------------------------------------------------


def _apply(root, stub, *extra):
    env = clean_env(**stub.env)
    return run_k3snode(
        "apply",
        "--mesh", "none",
        "--state-dir", str(root / "var/lib/k3snode"),
        "--k3s-config", str(root / "etc/rancher/k3s/config.yaml"),
        *extra,
        env=env,
    )  # fmt: skip


def test_apply_restarts_k3s_only_when_the_content_changed(root, stub):
    stub.units(**{"k3s.service": RUNNING})
    r = _apply(root, stub, "--external-ip", "5.6.7.8")
    assert r.returncode == 0, r.stderr
    assert "restarted k3s.service" in r.stdout
    assert stub.verbs().count("restart") == 1
    r = _apply(root, stub, "--external-ip", "5.6.7.8")
    assert r.returncode == 0 and "unchanged" in r.stdout
    assert stub.verbs().count("restart") == 1, "unchanged content: no restart"
    r = _apply(root, stub, "--external-ip", "9.9.9.9", "--no-restart")
    assert r.returncode == 0 and "written" in r.stdout
    assert stub.verbs().count("restart") == 1, "--no-restart"


def test_apply_never_starts_a_stopped_k3s(root, stub):
    stub.units(**{"k3s.service": {**RUNNING, "active": "inactive", "sub": "dead"}})
    r = _apply(root, stub, "--external-ip", "5.6.7.8")
    assert r.returncode == 0, r.stderr
    assert "K3s reads the new config when it starts" in r.stdout
    assert set(stub.verbs()) == {"show"}


def test_apply_agent_restarts_the_agent_unit(root, stub, tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    stub.units(**{"k3s-agent.service": RUNNING})
    r = _apply(
        root, stub, "--external-ip", "5.6.7.8", "--server", "https://10.0.0.1:6443",
        "--token-file", str(token),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert ["restart", "--no-block", "k3s-agent.service"] in stub.calls()


def test_apply_reports_a_failed_restart(root, stub):
    stub.units(**{"k3s.service": {**RUNNING, "after_restart": "failed"}})
    r = _apply(root, stub, "--external-ip", "5.6.7.8")
    assert r.returncode == 1
    assert "failed after restart" in r.stderr
