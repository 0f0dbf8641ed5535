"""The .deb's maintainer scripts under a running systemd: installed enabled but not started, a
reinstall (upgrade) restarts a running k3snode, removal stops it (K3s keeps running), purge removes
k3snode's state and never K3s's config."""

from __future__ import annotations

import os
import shutil

import pytest
from debian_tree import BOOT_PACKAGES, Machine, build_deb, have_tools, rootfs
from helpers import REPO

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "nsenter"),
        reason="needs systemd-container, mmdebstrap and the packaging tools",
    ),
]
STUBS = os.path.join(REPO, "tests", "stubs")
SETTINGS = '[node]\nrole = "server"\nmesh = "none"\n[discovery]\nexternal_ips = ["16.16.16.16"]\nprovider = "none"\n'


def test_install_upgrade_remove_purge_under_systemd(tmp_path):
    root = rootfs(str(tmp_path / "root"), "boot", BOOT_PACKAGES)
    deb = build_deb()
    shutil.copy(deb, os.path.join(root, "srv"))
    inside = "/srv/" + os.path.basename(deb)
    shutil.copy(os.path.join(STUBS, "k3s"), os.path.join(root, "usr/local/bin/k3s"))
    os.chmod(os.path.join(root, "usr/local/bin/k3s"), 0o755)
    shutil.copy(os.path.join(STUBS, "k3s.service"), os.path.join(root, "etc/systemd/system"))
    with Machine.boot(root, args=["--private-network"]) as m:
        m.sh("dpkg", "-i", inside)
        assert m.sh("systemctl", "is-enabled", "k3snode.service").stdout.strip() == "enabled"
        assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "inactive"
        assert m.sh("stat", "-c", "%a", "/var/lib/k3snode").stdout.strip() == "700"
        assert m.sh("stat", "-c", "%a", "/run/k3snode").stdout.strip() == "755"

        m.write("/etc/k3snode/config.toml", SETTINGS)
        m.sh("systemctl", "start", "k3snode.service")
        first = m.show("k3snode.service", "MainPID", "ActiveState")
        assert first["ActiveState"] == "active"
        assert "16.16.16.16" in m.read("/etc/rancher/k3s/config.yaml")
        m.sh("systemctl", "start", "k3s.service")
        k3s = m.show("k3s.service", "MainPID")["MainPID"]

        m.sh("dpkg", "-i", inside)  # the same version again: an upgrade for the scripts
        again = m.show("k3snode.service", "MainPID", "ActiveState")
        assert again["ActiveState"] == "active" and again["MainPID"] != first["MainPID"]
        assert m.read("/etc/k3snode/config.toml") == SETTINGS  # the changed conffile stays
        assert m.show("k3s.service", "MainPID")["MainPID"] == k3s  # nothing new for K3s

        m.sh("dpkg", "-r", "k3snode")
        assert m.show("k3snode.service", "ActiveState")["ActiveState"] in ("inactive", "")
        assert m.sh("test", "-e", f"/proc/{again['MainPID']}", check=False).returncode == 1
        assert m.show("k3s.service", "MainPID", "ActiveState") == {
            "MainPID": k3s,
            "ActiveState": "active",
        }
        assert m.sh("test", "-d", "/var/lib/k3snode", check=False).returncode == 0

        m.sh("dpkg", "-P", "k3snode")
        for gone in (
            "/var/lib/k3snode",
            "/etc/k3snode/config.toml",
            "/etc/systemd/system/multi-user.target.wants/k3snode.service",
        ):
            assert m.sh("test", "-e", gone, check=False).returncode == 1, gone
        assert "16.16.16.16" in m.read("/etc/rancher/k3s/config.yaml")
        assert m.show("k3s.service", "MainPID")["MainPID"] == k3s
