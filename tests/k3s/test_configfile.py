"""The merge-preserving writer: the user's keys and comments stay, k3snode's keys are replaced."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from k3snode.k3s import configfile
from k3snode.k3s.configfile import ConfigFileError

USER = """\
# my cluster
write-kubeconfig-mode: "0644"   # readable kubeconfig
node-label:
  - zone=eu          # placement
  - tier=edge

tls-san:
- k3s.example.com
node-external-ip: 1.2.3.4
"""
MANAGED = {
    "node-external-ip": ["172.233.211.141"],
    "flannel-backend": "wireguard-native",
    "flannel-external-ip": True,
}


def write(path, managed, previously=(), role="server"):
    p = configfile.plan(str(path), managed, set(previously), role)
    return p, configfile.apply(p)


def test_user_keys_and_comments_survive(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(USER)
    plan, result = write(path, MANAGED)
    assert result.changed
    text = path.read_text()
    for line in ("# my cluster", '"0644"   # readable kubeconfig', "  - zone=eu          # placement",
                 "- k3s.example.com"):  # fmt: skip
        assert line in text
    data = yaml.safe_load(text)
    assert data == {
        "write-kubeconfig-mode": "0644",
        "node-label": ["zone=eu", "tier=edge"],
        "tls-san": ["k3s.example.com"],
        **MANAGED,
    }
    assert "1.2.3.4" not in text  # the hand-written value of a key k3snode now manages is replaced
    assert plan.added == ("flannel-backend", "flannel-external-ip")
    assert plan.modified == ("node-external-ip",)


def test_unchanged_content_is_not_written(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(USER)
    write(path, MANAGED)
    before = os.stat(path)
    os.utime(path, (before.st_atime - 100, before.st_mtime - 100))
    old_mtime = os.stat(path).st_mtime_ns
    plan, result = write(path, MANAGED, previously=MANAGED)
    assert not plan.changed and not result.changed
    assert os.stat(path).st_mtime_ns == old_mtime
    assert os.stat(path).st_ino == before.st_ino


def test_idempotent_over_many_passes(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(USER)
    write(path, MANAGED)
    first = path.read_text()
    for _ in range(5):
        plan, _ = write(path, MANAGED, previously=MANAGED)
        assert not plan.changed
    assert path.read_text() == first


def test_stale_managed_keys_removed_user_keys_kept(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("flannel-iface: eth1\n")
    write(path, MANAGED)
    # Switch to tailscale: flannel-* no longer managed, vpn-auth-file appears.
    new = {"node-external-ip": ["100.101.102.103"], "vpn-auth-file": "/var/lib/k3snode/vpn-auth"}
    plan, _ = write(path, new, previously=MANAGED)
    data = yaml.safe_load(path.read_text())
    assert data == {"flannel-iface": "eth1", **new}
    assert set(plan.removed) == {"flannel-backend", "flannel-external-ip"}


def test_key_user_wrote_is_never_removed_unless_k3snode_wrote_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("flannel-backend: vxlan\n")
    write(path, {"node-external-ip": ["8.8.8.8"]}, previously={"node-external-ip"})
    assert yaml.safe_load(path.read_text())["flannel-backend"] == "vxlan"


def test_mode_0600_and_mode_fixed_without_rewrite(tmp_path):
    path = tmp_path / "config.yaml"
    write(path, MANAGED)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    ino = os.stat(path).st_ino
    _, result = write(path, MANAGED, previously=MANAGED)
    assert result.mode_fixed and not result.changed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and os.stat(path).st_ino == ino


def test_new_file_and_directory(tmp_path):
    path = tmp_path / "etc/rancher/k3s/config.yaml.d/90-k3snode.yaml"
    plan, result = write(path, MANAGED)
    assert plan.old_text is None and result.changed
    assert yaml.safe_load(path.read_text()) == MANAGED
    assert path.read_text().startswith(configfile.MARKER)
    assert sorted(os.listdir(path.parent)) == ["90-k3snode.yaml"]


def test_empty_managed_set_leaves_only_user_content(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("# note\ndebug: true\n")
    write(path, MANAGED)
    write(path, {}, previously=MANAGED)
    assert path.read_text() == "# note\ndebug: true\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node-label: [unclosed\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("just a string\n", "must be a YAML mapping"),
        ("1: x\n", "is not a string"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_invalid_existing_file_is_left_untouched(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    mtime = os.stat(path).st_mtime_ns
    with pytest.raises(ConfigFileError, match=message) as e:
        write(path, MANAGED)
    assert str(path) in str(e.value) and "left untouched" in str(e.value)
    assert path.read_text() == text and os.stat(path).st_mtime_ns == mtime


def test_flow_style_document_falls_back_to_a_full_dump(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("{debug: true, node-external-ip: 1.2.3.4}\n")
    write(path, MANAGED)
    assert yaml.safe_load(path.read_text()) == {"debug": True, **MANAGED}


def test_duplicate_managed_keys_all_removed(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("node-external-ip: 1.1.1.1\ndebug: true\nnode-external-ip: 2.2.2.2\n")
    write(path, MANAGED)
    text = path.read_text()
    assert "1.1.1.1" not in text and "2.2.2.2" not in text
    assert yaml.safe_load(text) == {"debug": True, **MANAGED}


def test_block_scalars_and_anchors(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "kubelet-arg: &args\n  - max-pods=50\nnode-taint: |\n  a=b:NoSchedule\n\n"
        "node-external-ip:\n- 1.1.1.1\n# trailing comment\n"
    )
    write(path, MANAGED)
    data = yaml.safe_load(path.read_text())
    assert data["kubelet-arg"] == ["max-pods=50"] and data["node-taint"] == "a=b:NoSchedule\n"
    assert data["node-external-ip"] == ["172.233.211.141"]
    assert "# trailing comment" in path.read_text()


def test_warns_about_user_keys_the_role_does_not_know(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("flannel-backend: vxlan\n")
    plan = configfile.plan(str(path), {"server": "https://a.example:6443"}, set(), "agent")
    assert any("flannel-backend" in w and "k3s server" in w for w in plan.warnings)


def test_dropin_names():
    assert configfile.check_path("/etc/rancher/k3s/config.yaml.d/90-k3snode.yaml") is None
    assert configfile.check_path("/etc/rancher/k3s/config.yaml.d/90-k3snode.YML") is None
    assert configfile.check_path("/etc/rancher/k3s/config.yaml.d/90-k3snode.conf")
    assert configfile.check_path("/etc/rancher/k3s/config.yaml") is None
