"""The server underlay on wireguard-go, run by the daemon under the hardened unit exactly as the
.deb installs it: the sandbox must let k3snode create the TUN device (PrivateDevices with
/dev/net/tun bound in), run wireguard-go, reach its UAPI socket in /run/wireguard and set the
interface's address over rtnetlink with nothing but CAP_NET_ADMIN."""

from __future__ import annotations

import os
import subprocess

import pytest
from debian_tree import BOOT_PACKAGES, Machine, build_deb, have_tools, install_deb, rootfs

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "nsenter", "wg"),
        reason="needs systemd-container, mmdebstrap, wireguard-tools and the packaging tools",
    ),
    pytest.mark.skipif(
        not os.path.exists("/dev/net/tun"), reason="needs /dev/net/tun for wireguard-go"
    ),
]


def test_underlay_on_wireguard_go_under_the_hardened_unit(tmp_path):
    peer_key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    peer_pub = subprocess.run(
        ["wg", "pubkey"], input=peer_key, capture_output=True, text=True, check=True
    ).stdout.strip()
    settings = f"""\
[node]
role = "server"
mesh = "none"
[k3s]
cluster_init = true
[discovery]
external_ips = ["16.16.16.16"]
provider = "none"
[underlay]
enabled = true
address = "10.99.0.1/24"
userspace = "always"
[[underlay.peers]]
name = "cp-2"
public_key = "{peer_pub}"
endpoint = "16.16.16.17:51822"
address = "10.99.0.2"
"""
    root = rootfs(str(tmp_path / "root"), "boot", BOOT_PACKAGES)
    install_deb(root, build_deb())
    with open(os.path.join(root, "etc/k3snode/config.toml"), "w") as f:
        f.write(settings)
    args = ["--private-network", "--capability=CAP_NET_ADMIN", "--bind=/dev/net/tun"]
    with Machine.boot(root, args=args) as m:
        m.wait_for(
            lambda: m.show("k3snode.service", "ActiveState")["ActiveState"] == "active",
            timeout=60,
            what="k3snode to be ready",
        )
        journal = m.journal("k3snode.service")
        show = m.sh("wg", "show", "k3snode-ul", check=False)
        assert show.returncode == 0, journal[-3000:] + show.stderr
        assert peer_pub in show.stdout and "endpoint: 16.16.16.17:51822" in show.stdout
        assert "listening port: 51822" in show.stdout
        addr = m.sh("ip", "-o", "addr", "show", "dev", "k3snode-ul").stdout
        assert "10.99.0.1/24" in addr, addr
        # wireguard-go runs in k3snode's own cgroup, the UAPI socket where wg found it.
        assert m.sh("test", "-S", "/run/wireguard/k3snode-ul.sock", check=False).returncode == 0
        script = (
            'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = wireguard-go ] && cat $p/cgroup; done'
        )
        cgroups = m.sh("sh", "-c", script, check=False).stdout
        assert "/system.slice/k3snode.service" in cgroups, cgroups
        # The generated private key: 0600 in the state directory, never in the journal.
        assert m.sh("stat", "-c", "%a", "/var/lib/k3snode/underlay.key").stdout.strip() == "600"
        key = m.read("/var/lib/k3snode/underlay.key").strip()
        assert key and key not in journal
        config = m.read("/etc/rancher/k3s/config.yaml")
        assert "- 10.99.0.1" in config  # node-ip: etcd advertises the underlay address
