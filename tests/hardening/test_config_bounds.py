"""Findings 5 and 8 (and CRLF from 13): an existing config.yaml is bounded, valid YAML is merged.

The alias bomb runs through ``k3snode apply`` and ``render`` as real processes, measured.
"""

from __future__ import annotations

import os

import pytest
import yaml
from helpers import NetNS
from measure import k3snode, measure

from k3snode.k3s import configfile
from k3snode.k3s.configfile import ConfigFileError

SEEDS = os.path.join(os.path.dirname(__file__), "seeds")
MANAGED = {"node-external-ip": ["203.0.113.5"], "flannel-backend": "wireguard-native"}


def _bomb() -> str:
    with open(os.path.join(SEEDS, "config-alias-bomb.yaml")) as f:
        return f.read()


def _args(root) -> list[str]:
    return [
        "--config",
        "/dev/null",
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(root / "etc/rancher/k3s/config.yaml"),
        "--external-ip",
        "203.0.113.5",
        "--mesh",
        "none",
    ]


@pytest.mark.netns
@pytest.mark.parametrize("command", ["apply", "render"])
def test_config_alias_bomb_is_refused_in_one_line_quickly_and_untouched(root, command):
    config = root / "etc/rancher/k3s/config.yaml"
    bomb = _bomb()
    config.write_text(bomb)
    mtime = os.stat(config).st_mtime_ns
    extra = ["--no-restart"] if command == "apply" else []
    with NetNS.create() as ns:
        m = measure(k3snode(command, *_args(root), *extra), netns=ns.name)
    print(
        f"{command} on a {len(bomb)}-byte bomb: exit {m.returncode}, "
        f"RSS {m.rss_kib} KiB, {m.seconds}s"
    )
    assert m.returncode == 2, m.output
    lines = [line for line in m.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "aliases are expanded" in lines[0] and str(config) in lines[0]
    assert "left untouched" in lines[0] and len(lines[0]) < 300
    assert config.read_text() == bomb and os.stat(config).st_mtime_ns == mtime
    assert m.rss_kib < 120 * 1024 and m.seconds < 10, (m.rss_kib, m.seconds)


@pytest.mark.parametrize(
    "text",
    [
        "debug: true\n...\n",
        "node-external-ip: &ip 1.2.3.4\ntls-san: *ip\n",
        "# c\nnode-external-ip: &ip\n  - 1.2.3.4\ntls-san: *ip\ndebug: true\n...\n",
    ],
    ids=["document-end", "anchor-on-managed-key", "both"],
)
def test_valid_yaml_the_line_edit_cannot_keep_falls_back_to_a_full_merge(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    before = yaml.safe_load(text)
    p = configfile.plan(str(path), MANAGED, {"node-external-ip"}, "server")
    configfile.apply(p)
    after = yaml.safe_load(path.read_text())
    want = {k: v for k, v in before.items() if k != "node-external-ip"}
    assert after == {**want, **MANAGED}
    again = configfile.plan(str(path), MANAGED, set(MANAGED), "server")
    assert not again.changed, "a second merge is a no-op"


def test_alias_budget_allows_ordinary_anchors(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("kubelet-arg: &a [max-pods=50, v=2]\nkube-proxy-arg: *a\n")
    configfile.apply(configfile.plan(str(path), MANAGED, set(), "server"))
    assert yaml.safe_load(path.read_text())["kube-proxy-arg"] == ["max-pods=50", "v=2"]


def test_too_large_config_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("node-label:\n" + "  - a=b\n" * 200_000)
    with pytest.raises(ConfigFileError, match="larger than"):
        configfile.plan(str(path), MANAGED, set(), "server")


def test_crlf_line_ends_are_kept(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"# mine\r\ndebug: true\r\nnode-label:\r\n  - a=b\r\n")
    configfile.apply(configfile.plan(str(path), MANAGED, set(), "server"))
    raw = path.read_bytes()
    assert raw.startswith(b"# mine\r\ndebug: true\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b""), "every line ends in CRLF"
    assert yaml.safe_load(raw) == {"debug": True, "node-label": ["a=b"], **MANAGED}
    assert not configfile.plan(str(path), MANAGED, set(MANAGED), "server").changed
