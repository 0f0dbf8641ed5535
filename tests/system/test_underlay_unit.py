"""The server underlay on wireguard-go, run by the daemon under the hardened unit exactly as the
.deb installs it: k3snode starts wireguard-go as its own unit (k3snode-wireguard-go@IFNAME, whose
sandbox must allow the TUN device), reaches its UAPI socket in /run/wireguard and sets the
interface's address over rtnetlink with nothing but CAP_NET_ADMIN. A peer in a namespace on the
host pings over the underlay while k3snode is stopped, started and restarted: wireguard-go is not
in k3snode's cgroup, so it keeps running (same PID), and the restarted k3snode reuses it."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from debian_tree import BOOT_PACKAGES, Machine, build_deb, have_tools, install_deb, rootfs
from helpers import NetNS, sh, unique_name
from wgtest import ping, ping_within, wireguard_go

UNIT = "k3snode-wireguard-go@k3snode-ul.service"

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


def wireguard_go_pids(m: Machine) -> list[str]:
    script = (
        'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = wireguard-go ] && echo ${p#/proc/}; done'
    )
    return m.sh("sh", "-c", script, check=False).stdout.split()


def wire(m: Machine, ns: NetNS) -> None:
    """A veth pair: 192.0.2.1 in the machine, 192.0.2.2 in ``ns`` on the host."""
    inside, outside = unique_name("vm"), unique_name("vh")
    sh("ip", "link", "add", inside, "type", "veth", "peer", "name", outside)
    sh("ip", "link", "set", outside, "netns", ns.name)
    sh("ip", "link", "set", inside, "netns", str(m.leader))
    m.sh("ip", "addr", "add", "192.0.2.1/24", "dev", inside)
    m.sh("ip", "link", "set", inside, "up")
    ns.ip("addr", "add", "192.0.2.2/24", "dev", outside)
    ns.ip("link", "set", outside, "up")


def test_underlay_on_wireguard_go_under_the_hardened_unit(tmp_path):
    peer_key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    peer_pub = subprocess.run(
        ["wg", "pubkey"], input=peer_key, capture_output=True, text=True, check=True
    ).stdout.strip()
    key_file = tmp_path / "peer.key"
    key_file.write_text(peer_key)
    key_file.chmod(0o600)
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
endpoint = "192.0.2.2:51822"
address = "10.99.0.2"
"""
    root = rootfs(str(tmp_path / "root"), "boot", BOOT_PACKAGES)
    deb = build_deb()
    install_deb(root, deb)
    with open(os.path.join(root, "etc/k3snode/config.toml"), "w") as f:
        f.write(settings)
    args = ["--private-network", "--capability=CAP_NET_ADMIN", "--bind=/dev/net/tun"]
    with NetNS.create() as ns, Machine.boot(root, args=args) as m, wireguard_go(ns) as peer_if:
        wire(m, ns)
        m.wait_for(
            lambda: m.show("k3snode.service", "ActiveState")["ActiveState"] == "active",
            timeout=60,
            what="k3snode to be ready",
        )
        journal = m.journal("k3snode.service")
        show = m.sh("wg", "show", "k3snode-ul", check=False)
        assert show.returncode == 0, journal[-3000:] + show.stderr
        assert peer_pub in show.stdout and "endpoint: 192.0.2.2:51822" in show.stdout
        assert "listening port: 51822" in show.stdout
        addr = m.sh("ip", "-o", "addr", "show", "dev", "k3snode-ul").stdout
        assert "10.99.0.1/24" in addr, addr
        # wireguard-go runs in its own unit, not in k3snode's cgroup; the UAPI socket is shared.
        assert m.sh("test", "-S", "/run/wireguard/k3snode-ul.sock", check=False).returncode == 0
        wg_unit = m.show(UNIT, "ActiveState", "MainPID")
        assert wg_unit["ActiveState"] == "active", m.journal(UNIT)
        pid = wg_unit["MainPID"]
        assert wireguard_go_pids(m) == [pid]
        cgroup = m.read(f"/proc/{pid}/cgroup")
        assert f"/{UNIT}" in cgroup and "k3snode.service" not in cgroup, cgroup
        # The generated private key: 0600 in the state directory, never in the journal.
        assert m.sh("stat", "-c", "%a", "/var/lib/k3snode/underlay.key").stdout.strip() == "600"
        key = m.read("/var/lib/k3snode/underlay.key").strip()
        assert key and key not in journal
        config = m.read("/etc/rancher/k3s/config.yaml")
        assert "- 10.99.0.1" in config  # node-ip: etcd advertises the underlay address

        # The peer: wireguard-go in a namespace on the host, talking to the machine over veth.
        own_pub = m.sh("wg", "show", "k3snode-ul", "public-key").stdout.strip()
        ns.exec("wg", "set", peer_if, "listen-port", "51822", "private-key", str(key_file))
        ns.exec("wg", "set", peer_if, "peer", own_pub, "allowed-ips", "10.99.0.1/32",
                "endpoint", "192.0.2.1:51822")  # fmt: skip
        ns.ip("addr", "add", "10.99.0.2/24", "dev", peer_if)
        ns.ip("link", "set", peer_if, "up")
        assert ping_within(ns, "10.99.0.1"), m.sh("wg", "show", "k3snode-ul").stdout
        pinger = ns.popen(
            ["ping", "-n", "-i", "0.2", "10.99.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            # Stopped: the underlay stays, served by the same wireguard-go.
            m.sh("systemctl", "stop", "k3snode.service")
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "inactive"
            assert ping(ns, "10.99.0.1", count=3)
            assert m.show(UNIT, "ActiveState", "MainPID") == {
                "ActiveState": "active",
                "MainPID": pid,
            }
            # Started and restarted: k3snode finds the socket and reuses it, nothing new starts.
            for verb in ("start", "restart"):
                r = m.sh("systemctl", verb, "k3snode.service", check=False)
                assert r.returncode == 0, m.journal("k3snode.service")[-3000:]
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "active"
            assert ping(ns, "10.99.0.1", count=3)
            assert m.show(UNIT, "ActiveState", "MainPID") == {
                "ActiveState": "active",
                "MainPID": pid,
            }
            assert wireguard_go_pids(m) == [pid]
            assert m.sh("wg", "show", "k3snode-ul", "public-key").stdout.strip() == own_pub
            # A package upgrade (the same version again): postinst try-restarts k3snode only.
            before = m.show("k3snode.service", "MainPID")["MainPID"]
            m.sh("dpkg", "-i", "/srv/" + os.path.basename(deb), timeout=120)
            after = m.show("k3snode.service", "ActiveState", "MainPID")
            assert after["ActiveState"] == "active" and after["MainPID"] != before
            assert ping(ns, "10.99.0.1", count=3)
            assert m.show(UNIT, "MainPID")["MainPID"] == pid
            assert wireguard_go_pids(m) == [pid]
        finally:
            pinger.send_signal(signal.SIGINT)
            out, _ = pinger.communicate(timeout=10)
        sent, got = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
        assert sent >= 5 and got >= sent - 1, out[-500:]  # at most the one in flight at the end
        # k3snode started wireguard-go's unit once, at boot; each later start (start, restart,
        # upgrade) found and used it.
        journal = m.journal("k3snode.service")
        assert journal.count(f"underlay: started {UNIT}") == 1, journal[-3000:]
        assert journal.count("underlay: k3snode-ul exists (userspace): using it") == 3, journal

        # A crashed wireguard-go: systemd starts it again (a new, empty interface), and the next
        # pass of k3snode (here the one `systemctl reload` asks for) configures it again.
        m.sh("systemctl", "kill", "--signal=SIGKILL", UNIT)
        m.wait_for(
            lambda: (
                m.show(UNIT, "ActiveState", "MainPID")["MainPID"] not in ("0", pid)
                and m.sh("test", "-S", "/run/wireguard/k3snode-ul.sock", check=False).returncode
                == 0
            ),
            what="systemd to restart wireguard-go",
        )
        m.sh("systemctl", "reload", "k3snode.service")
        assert ping_within(ns, "10.99.0.1", timeout=30), m.journal("k3snode.service")[-2000:]
        new_pid = m.show(UNIT, "MainPID")["MainPID"]
        assert wireguard_go_pids(m) == [new_pid] and new_pid != pid
