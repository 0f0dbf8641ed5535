"""Findings 7, 11 and 12: control characters, the monotonic health grace, deprecated ranges."""

from __future__ import annotations

import os

import pytest
from helpers import run_k3snode

from k3snode import addresses
from k3snode.config.load import load
from k3snode.config.model import SettingsError
from k3snode.health.checks import Observation
from k3snode.health.model import HealthModel


@pytest.mark.parametrize(
    "env",
    [
        {"K3S_URL": "https://1.2.3.4:64\n43", "K3S_TOKEN": "t"},
        {"K3S_URL": "https://1.2.\t3.4:6443", "K3S_TOKEN": "t"},
        {"K3S_URL": "https://1.2.3.4:6443\r", "K3S_TOKEN": "t"},
        {"K3SNODE_UNDERLAY_INTERFACE": "ul0\n"},
        {"K3SNODE_K3S_NODE_NAME": "node\x1b[31m"},
        {"K3SNODE_EXTERNAL_IPS": "203.0.113.5,\x00"},
    ],
)
def test_control_characters_are_rejected_before_parsing(env):
    with pytest.raises(SettingsError, match="control character"):
        load(None, env=env)


def test_control_character_in_the_settings_file_is_one_line_exit_2(root):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text('[k3s]\nserver = "https://1.2.3.4:6443\\n"\n')
    out = run_k3snode("render", "--config", str(cfg), "--external-ip", "203.0.113.5")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert "[k3s] server" in line and "control character" in line and "\\n" in line


def test_secret_with_a_control_character_is_not_shown():
    with pytest.raises(SettingsError) as e:
        load(None, env={"K3S_TOKEN": "s3cret\n", "K3S_URL": "https://1.2.3.4:6443"})
    assert "s3cret" not in str(e.value) and "control character" in str(e.value)


@pytest.mark.parametrize(
    "text",
    ["::8.8.8.8", "::808:808", "::1.2.3.4", "3ffe::1", "2001:10::1", "fec0::1"],
)
def test_deprecated_ipv6_ranges_are_not_public(text):
    assert addresses.public_problem(text) is not None
    assert not addresses.judge(text, 6).ok


def test_ordinary_addresses_stay_public():
    for text in ("2a01:4f8:c17:1234::1", "8.8.8.8", "2600:1f18::5"):
        assert addresses.public_problem(text) is None


class Clocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_700_000_000.0

    def tick(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def test_grace_ignores_a_backward_wall_clock_step():
    c = Clocks()
    m = HealthModel(grace=60, wall=lambda: c.wall, clock=lambda: c.mono)
    m.observe(Observation("config", False, "differs"))
    c.wall -= 3600  # NTP steps the clock back an hour
    c.tick(600)
    state = m.snapshot().checks[0]
    assert state.state == "failing", "ten minutes of failure is failing whatever the wall says"
    assert m.snapshot().status == "degraded"


def test_grace_ignores_a_forward_wall_clock_step():
    c = Clocks()
    m = HealthModel(grace=60, wall=lambda: c.wall, clock=lambda: c.mono)
    m.observe(Observation("config", False, "differs"))
    c.wall += 3600
    c.tick(1)
    assert m.snapshot().checks[0].state == "grace"
    assert 0 < m.next_change() <= 59
    assert m.snapshot().checks[0].since == pytest.approx(1_700_000_000.0), "dated on the wall"


def test_loose_settings_file_and_directory_are_warned_about(root):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text('[node]\nrole = "server"\n')
    os.chmod(cfg, 0o666)
    os.chmod(cfg.parent, 0o777)
    out = run_k3snode("render", "--config", str(cfg), "--external-ip", "203.0.113.5")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "writable by others" in line]
    assert len(warnings) == 2 and "0666" in warnings[0] and "0777" in warnings[1], out.stderr
    os.chmod(cfg, 0o600)
    os.chmod(cfg.parent, 0o755)
    out = run_k3snode("render", "--config", str(cfg), "--external-ip", "203.0.113.5")
    assert "writable by others" not in out.stderr


@pytest.mark.parametrize("path", ["/etc/rancher/anywhere.conf", "/etc/passwd", "/root/.bashrc"])
def test_k3s_config_must_be_a_yaml_file_k3s_reads(root, path):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text(f'[k3s]\nconfig = "{path}"\n')
    out = run_k3snode("apply", "--config", str(cfg), "--external-ip", "203.0.113.5")
    assert out.returncode == 2 and "[k3s] config" in out.stderr and "config.yaml" in out.stderr
    assert not os.path.exists("/etc/rancher/anywhere.conf")


def test_symlinked_k3s_config_is_refused_in_one_line_and_left_alone(root):
    real = root / "elsewhere.yaml"
    real.write_text("debug: true\n")
    link = root / "etc/rancher/k3s/config.yaml"
    os.symlink(real, link)
    out = run_k3snode(
        "apply", "--no-restart", "--config", "/dev/null", "--k3s-config", str(link),
        "--state-dir", str(root / "var/lib/k3snode"),
        "--external-ip", "203.0.113.5", "--role", "server",
    )  # fmt: skip
    assert out.returncode == 2 and "symbolic link" in out.stderr, out.stderr
    assert os.path.islink(link) and real.read_text() == "debug: true\n"


def test_network_error_text_is_one_bounded_printable_line():
    from k3snode.discovery.result import Discovery

    d = Discovery(error="HTTP 500 " + "\x1b[2J\r\nX-Evil: 1 " * 10000, notes=("a\nb",))
    assert len(d.error) <= 1000 and "\n" not in d.error and "\x1b" not in d.error
    assert d.notes == ("a b",)
