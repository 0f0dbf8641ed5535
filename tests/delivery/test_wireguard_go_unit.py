"""systemd/k3snode-wireguard-go@.service: wireguard-go for the underlay in a unit of its own, so
that stopping or restarting k3snode leaves it running. What it promises, checked by systemd's own
tools; tests/system/test_underlay_unit.py runs it."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import REPO
from test_unit_file import _with_man, entries

from k3snode.mesh.wg.link import UNIT_TEMPLATE

UNIT = os.path.join(REPO, "systemd", UNIT_TEMPLATE)
needs_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze not installed"
)


def values(section: str, key: str) -> list[str]:
    return [v for s, k, v in entries(UNIT) if s == section and k == key]


def test_runs_wireguard_go_in_the_foreground_for_the_raw_instance_name():
    # %i, not %I: the unescaped form would turn the "-" of k3snode-ul into "/".
    assert values("Service", "ExecStart") == ["/usr/bin/wireguard-go -f %i"]
    assert values("Service", "Type") == ["simple"]
    assert values("Service", "Restart") == ["on-failure"]


def test_never_enabled_and_not_tied_to_k3snode():
    """Only k3snode starts it; nothing of k3snode's stops it (no [Install], no dependency)."""
    assert not [e for e in entries(UNIT) if e[0] == "Install"]
    for key in ("Requires", "BindsTo", "PartOf", "Requisite", "Wants", "After"):
        assert not values("Unit", key), key


def test_the_socket_directory_is_shared_and_kept():
    assert values("Service", "RuntimeDirectory") == ["wireguard"]
    assert values("Service", "RuntimeDirectoryPreserve") == ["yes"]


def test_sandbox_allows_the_tun_device_and_net_admin_only():
    assert values("Service", "CapabilityBoundingSet") == ["CAP_NET_ADMIN"]
    assert values("Service", "NoNewPrivileges") == ["yes"]
    assert values("Service", "PrivateDevices") == ["yes"]
    assert values("Service", "DeviceAllow") == ["/dev/net/tun rw"]
    assert values("Service", "BindPaths") == ["/dev/net/tun"]
    assert values("Service", "ProtectSystem") == ["strict"]
    assert not values("Service", "User")


def _verify(tmp_path, text: str) -> subprocess.CompletedProcess:
    """Verify an instance of a copy whose ExecStart points at an executable that exists here."""
    d = tmp_path / "units"
    d.mkdir()
    exe = tmp_path / "bin" / "wireguard-go"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    (d / UNIT_TEMPLATE).write_text(text.replace("/usr/bin/wireguard-go", str(exe)))
    return subprocess.run(
        ["systemd-analyze", "verify", str(d / UNIT_TEMPLATE.replace("@.", "@k3snode-ul."))],
        capture_output=True,
        text=True,
        env=_with_man(tmp_path),
    )


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path):
    with open(UNIT, encoding="utf-8") as f:
        text = f.read()
    out = _verify(tmp_path, text)
    assert out.returncode == 0 and out.stderr == "", out.stderr


@needs_analyze
def test_verify_check_sees_mistakes(tmp_path):
    with open(UNIT, encoding="utf-8") as f:
        text = f.read().replace("[Service]\n", "[Service]\nRuntimeDirectoryPreserv=yes\n")
    out = _verify(tmp_path, text)
    assert "Unknown key" in out.stderr and "RuntimeDirectoryPreserv" in out.stderr
