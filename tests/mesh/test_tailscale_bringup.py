"""``k3snode apply`` with mesh = tailscale, end to end: the real CLI as a process, stub Tailscale
binaries on PATH that answer as Tailscale's CLI does and record every call.
"""

from __future__ import annotations

import stat

import pytest
import yaml
from helpers import run_k3snode
from tailscale_stub import KEY, TailscaleStub, write_settings

V4, V6 = "100.64.0.5", "fd7a:115c:a1e0::5"


@pytest.fixture
def stub(tmp_path):
    s = TailscaleStub.create(tmp_path)
    yield s
    s.stop_daemon()


def apply(stub, cfg, *args):
    return run_k3snode("apply", "--config", str(cfg), *args, env=stub.env(), timeout=90)


def config_of(root):
    return yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())


def assert_key_never_leaked(stub, res, key=KEY):
    """Not in any argv or environment the stubs saw, not in k3snode's output."""
    for call in stub.calls():
        assert not any(key in a for a in call["argv"]), call["argv"]
        assert not any(key in v for v in call["env"].values())
    assert key not in res.stdout and key not in res.stderr
    assert "Traceback" not in res.stderr


def test_apply_brings_tailscale_up_and_writes_k3s_config(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin", keys={KEY: "ok"})
    cfg = write_settings(tmp_path)
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    vpn = tmp_path / "var/lib/k3snode/vpn-auth"
    assert vpn.read_text() == f"name=tailscale,joinKey={KEY}\n"
    assert stat.S_IMODE(vpn.stat().st_mode) == 0o600
    conf = config_of(tmp_path)
    assert conf["node-external-ip"] == [V4, V6]
    assert conf["vpn-auth-file"] == str(vpn)
    ups = [c["argv"] for c in stub.calls("tailscale") if c["argv"][:1] == ["up"]]
    assert ups == [["up", "--reset", f"--auth-key=file:{tmp_path}/ts.key", "--timeout=5s"]]
    assert stub.subcommands()[:2] == ["version", "status"]  # looked before it leapt
    assert "brought up by k3snode" in res.stderr
    assert_key_never_leaked(stub, res)


def test_login_server_hostname_and_extra_args(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "ok"})
    cfg = write_settings(
        tmp_path,
        control_server_url="https://headscale.example.com",
        hostname="edge-7",
        extra_args=["--accept-dns=false", "--advertise-tags=tag:k3s"],
    )
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    (up,) = [c["argv"] for c in stub.calls("tailscale") if c["argv"][:1] == ["up"]]
    assert up[1:] == [
        "--reset",
        f"--auth-key=file:{tmp_path}/ts.key",
        "--timeout=5s",
        "--login-server=https://headscale.example.com",
        "--hostname=edge-7",
        "--accept-dns=false",
        "--advertise-tags=tag:k3s",
    ]
    line = (tmp_path / "var/lib/k3snode/vpn-auth").read_text()
    assert line == (
        f"name=tailscale,joinKey={KEY},controlServerURL=https://headscale.example.com,"
        "extraArgs=--hostname=edge-7 --accept-dns=false --advertise-tags=tag:k3s\n"
    )
    assert "Running as edge-7" in res.stderr
    assert_key_never_leaked(stub, res)


def test_already_running_means_no_up(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running", keys={})
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "up" not in stub.subcommands()
    assert stub.calls("tailscaled") == []
    assert config_of(tmp_path)["node-external-ip"] == [V4, V6]
    assert "already up" in res.stderr


def test_ipv4_only_tailnet(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running", ips=["100.100.1.2"])
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    assert config_of(tmp_path)["node-external-ip"] == ["100.100.1.2"]


def test_starting_then_running_is_waited_for(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "ok"}, starting_for=1.5)
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    assert config_of(tmp_path)["node-external-ip"] == [V4, V6]
    assert stub.subcommands().count("status") >= 3  # before up, then polled through Starting


def test_starting_is_waited_for_without_a_new_login(stub, tmp_path):
    stub.control(daemon="running", backend_state="Starting", starting_for=1.5, keys={KEY: "ok"})
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "up" not in stub.subcommands()
    assert config_of(tmp_path)["node-external-ip"] == [V4, V6]


def test_starts_tailscaled_when_it_does_not_answer(stub, tmp_path):
    stub.control(keys={KEY: "ok"})  # no "daemon": running iff the stub tailscaled runs
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    (daemon,) = stub.calls("tailscaled")
    assert daemon["argv"] == [
        "--state=/var/lib/tailscale/tailscaled.state",
        "--socket=/run/tailscale/tailscaled.sock",
    ]
    assert (stub.dir / "tailscaled.pid").exists()
    log = tmp_path / "var/lib/k3snode/tailscaled.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and "logtail started" in log.read_text()
    assert config_of(tmp_path)["node-external-ip"] == [V4, V6]
    assert_key_never_leaked(stub, res)


# --- failure modes: one line, exit 1, nothing written, the key nowhere --------------------------


def assert_clean_failure(stub, tmp_path, res, *words):
    assert res.returncode == 1, (res.stdout, res.stderr)
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, res.stderr
    for w in words:
        assert w in errors[0], errors[0]
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()
    assert not (tmp_path / "var/lib/k3snode/vpn-auth").exists()
    assert_key_never_leaked(stub, res)


@pytest.mark.parametrize(
    "key",
    [KEY, "5f3c9a0e1b7d4c2a8e6f0b1d3c5a7e9f0b2d4c6a8e0f1a3b"],
    ids=["tailscale", "headscale"],  # not the keys: pytest puts the test id into the environment
)
def test_invalid_key_is_named_and_never_echoed(stub, tmp_path, key):
    # The stub's control server echoes the key in its message, as older ones did.
    stub.control(daemon="running", keys={})
    res = apply(stub, write_settings(tmp_path, key=key, control_server_url="https://hs.example"))
    assert_clean_failure(stub, tmp_path, res, "rejected the auth key", str(tmp_path / "ts.key"),
                         "API key ******** not valid")  # fmt: skip
    assert_key_never_leaked(stub, res, key)


def test_revoked_or_expired_key(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "revoked"})
    res = apply(stub, write_settings(tmp_path))
    assert_clean_failure(stub, tmp_path, res, "rejected the auth key", "API key does not exist")


def test_refused_key_while_up_keeps_waiting(stub, tmp_path):
    # tailscaled retries a refused key and `tailscale up` waits for its --timeout (tailscale#1728);
    # the login error in Tailscale's health still names the cause.
    stub.control(daemon="running", keys={KEY: "retry"})
    res = apply(stub, write_settings(tmp_path, timeout=1))
    assert_clean_failure(stub, tmp_path, res, "rejected the auth key", "You are logged out",
                         "API key ******** not valid")  # fmt: skip


def test_up_timeout(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "hang"})
    res = apply(stub, write_settings(tmp_path, timeout=2))
    assert_clean_failure(stub, tmp_path, res, "did not reach Running within 2s", "NeedsLogin")
    (up,) = [c["argv"] for c in stub.calls("tailscale") if c["argv"][:1] == ["up"]]
    assert "--timeout=2s" in up


def test_machine_needs_approval(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "machine_auth"})
    res = apply(stub, write_settings(tmp_path, timeout=1))
    assert_clean_failure(stub, tmp_path, res, "approve this machine", "NeedsMachineAuth")


def test_tailscaled_that_dies_at_start(stub, tmp_path):
    stub.control(tailscaled="crash", keys={KEY: "ok"})
    res = apply(stub, write_settings(tmp_path, timeout=3))
    assert_clean_failure(stub, tmp_path, res, "tailscaled exited with status 1",
                         "tailscaled.log")  # fmt: skip
    assert "up" not in stub.subcommands()


def test_unreadable_status_stops_the_pass(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "ok"}, status_output='{"BackendState": ')
    res = apply(stub, write_settings(tmp_path))
    assert_clean_failure(stub, tmp_path, res, "tailscale status --json gave an unreadable answer")
    assert "up" not in stub.subcommands()


def test_not_installed_and_install_off(tmp_path):
    stub = TailscaleStub.create(tmp_path, installed=False)
    res = apply(stub, write_settings(tmp_path, install=False))
    assert_clean_failure(stub, tmp_path, res, "not installed", "install = false")


def test_dry_run_does_not_bring_tailscale_up(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin", keys={KEY: "ok"})
    res = apply(stub, write_settings(tmp_path), "--dry-run")
    assert "up" not in stub.subcommands()
    assert res.returncode == 1 and "not running" in res.stderr
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()


def test_render_reads_but_never_brings_up(stub, tmp_path):
    cfg = write_settings(tmp_path)
    stub.control(daemon="running", backend_state="Running")
    res = run_k3snode("render", "--config", str(cfg), env=stub.env())
    assert res.returncode == 0, res.stderr
    rendered = yaml.safe_load(res.stdout)
    assert rendered["node-external-ip"] == [V4, V6]
    assert rendered["vpn-auth-file"] == str(tmp_path / "var/lib/k3snode/vpn-auth")
    stub.control(daemon="running", backend_state="NeedsLogin", keys={KEY: "ok"})
    res = run_k3snode("render", "--config", str(cfg), env=stub.env())
    assert "node-external-ip" not in yaml.safe_load(res.stdout)
    assert "not running" in res.stderr
    assert "up" not in stub.subcommands()
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()


def test_missing_key_file_is_a_settings_mistake(stub, tmp_path):
    stub.control(daemon="running", keys={KEY: "ok"})
    cfg = write_settings(tmp_path)
    (tmp_path / "ts.key").unlink()
    res = apply(stub, cfg)
    assert res.returncode == 2 and "does not exist" in res.stderr
    assert stub.calls() == []  # a user mistake costs nothing: Tailscale untouched
