"""The server underlay end to end: three servers in three namespaces behind a router, a full
WireGuard mesh that k3snode configures through wireguard-go; roaming, DNS re-resolution, removed
peers, idempotent passes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

import pytest
from helpers import NetNS, clean_env, k3snode_cmd, run_k3snode, unique_name, veth, wait_for
from wgtest import need_wireguard_go, ping, ping_within, stop

from k3snode.mesh.wg.userspace import Userspace

pytestmark = pytest.mark.netns

N = 3
PORT = 51822


def _settings(ifname: str, i: int, key: str, peers: list[tuple[str, int]]) -> str:
    text = f"""\
[underlay]
enabled = true
interface = "{ifname}"
address = "10.99.0.{i}/24"
listen_port = {PORT}
private_key_file = "{key}"
keepalive = 1
resolve_interval = 2
"""
    for pub, j in peers:
        text += f"""
[[underlay.peers]]
name = "s{j}"
public_key = "{pub}"
endpoint = "s{j}.test:{PORT}"
address = "10.99.0.{j}"
"""
    return text


class Servers:
    def __init__(self, router: NetNS, nss: list[NetNS], tmp) -> None:
        self.router = router
        self.ns = nss
        self.tmp = tmp
        self.ifname = [unique_name("ul") for _ in nss]
        self.veth: list[str] = []
        self.public = [f"172.31.{i + 1}.2" for i in range(N)]
        self.config = [str(tmp / f"s{i + 1}.toml") for i in range(N)]
        self.pub: list[str] = []
        self.watchers: list[subprocess.Popen] = []

    def k3snode(self, i: int, *args: str) -> subprocess.CompletedProcess:
        r = run_k3snode(*args, "--config", self.config[i], netns=self.ns[i].name)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def write_hosts(self) -> None:
        text = "".join(f"{a} s{j + 1}.test\n" for j, a in enumerate(self.public))
        for ns in self.ns:
            ns.hosts(text)  # rewritten in place: the bind mount of running processes sees it

    def move(self, i: int, new: str) -> None:
        """Server i's public address changes (as when a cloud VM gets a new IP)."""
        ns, dev = self.ns[i], self.veth[i]
        ns.ip("addr", "del", f"{self.public[i]}/24", "dev", dev)
        ns.ip("addr", "add", f"{new}/24", "dev", dev)
        ns.ip("route", "replace", "default", "via", f"172.31.{i + 1}.1")
        self.public[i] = new

    def write_settings(self, i: int, members: list[int]) -> None:
        peers = [(self.pub[j], j + 1) for j in members]
        key = str(self.tmp / f"s{i + 1}.key")
        with open(self.config[i], "w") as f:
            f.write(_settings(self.ifname[i], i + 1, key, peers))

    def all_pairs_ping(self, timeout: float = 20) -> None:
        for i in range(N):
            for j in range(N):
                if i != j:
                    assert ping_within(self.ns[i], f"10.99.0.{j + 1}", timeout), (
                        f"s{i + 1} cannot reach s{j + 1} over the underlay"
                    )

    def watch(self) -> None:
        for i in range(N):
            cmd = k3snode_cmd("wireguard", "up", "--watch", "--interval", "0.5")
            with open(self.tmp / f"watch{i + 1}.log", "w") as log:
                self.watchers.append(
                    self.ns[i].popen(
                        [*cmd, "--config", self.config[i]], env=clean_env(), stdout=log, stderr=log
                    )
                )
        for i in range(N):  # each has made its first pass (it knows the node's own addresses)
            wait_for(lambda i=i: " is up; a pass every" in self.log(i), what=f"watcher {i + 1}")

    def log(self, i: int) -> str:
        return (self.tmp / f"watch{i + 1}.log").read_text()


@pytest.fixture
def servers(tmp_path):
    need_wireguard_go()
    with contextlib.ExitStack() as stack:
        router = stack.enter_context(NetNS.create())
        router.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
        nss = [stack.enter_context(NetNS.create()) for _ in range(N)]
        s = Servers(router, nss, tmp_path)
        for i, ns in enumerate(nss):
            dev, _ = veth(ns, router, [f"{s.public[i]}/24"], [f"172.31.{i + 1}.1/24"])
            s.veth.append(dev)
            ns.ip("route", "add", "default", "via", f"172.31.{i + 1}.1")
        s.write_hosts()
        try:
            yield s
        finally:
            for w in s.watchers:
                stop(w)
            # wireguard-go (started by k3snode, daemonized) exits when its interface goes away
            for ns, ifname in zip(nss, s.ifname):
                ns.ip("link", "del", ifname, check=False)
            for ifname in s.ifname:
                sock = f"/var/run/wireguard/{ifname}.sock"
                wait_for(lambda sock=sock: not os.path.exists(sock), timeout=10, what=sock)


def test_three_servers_full_mesh_roaming_dns_and_removal(servers):
    s = servers
    # 1. every server's key is created on first use; `wireguard pubkey` prints it
    for i in range(N):
        s.write_settings(i, [])
        r = s.k3snode(i, "wireguard", "pubkey")
        assert r.returncode == 0, r.stderr
        s.pub.append(r.stdout.strip())
        assert oct(os.stat(s.tmp / f"s{i + 1}.key").st_mode & 0o777) == "0o600"
        assert s.pub[i] in r.stderr  # logged: the public key, never the private one
        assert (s.tmp / f"s{i + 1}.key").read_text().strip() not in r.stderr + r.stdout
    assert len(set(s.pub)) == N

    # 2. the same peer list on every server (each skips itself); one pass each builds the mesh
    for i in range(N):
        s.write_settings(i, list(range(N)))
    for i in range(N):
        r = s.k3snode(i, "wireguard", "up")
        assert r.returncode == 0, r.stderr
        assert f"created {s.ifname[i]} (wireguard-go)" in r.stdout  # this kernel: no WireGuard
        assert r.stdout.count(" added ") == N - 1  # itself skipped
    s.all_pairs_ping()

    # 3. a second pass with the same settings changes nothing
    before = [Userspace(ifn).read() for ifn in s.ifname]
    for i in range(N):
        r = s.k3snode(i, "wireguard", "up")
        assert (r.returncode, r.stdout.strip()) == (0, "unchanged"), r.stdout + r.stderr
    after = [Userspace(ifn).read() for ifn in s.ifname]
    for b, a in zip(before, after):
        assert {(p.public_key, p.endpoint, p.allowed_ips, p.keepalive) for p in b.peers} == {
            (p.public_key, p.endpoint, p.allowed_ips, p.keepalive) for p in a.peers
        }
    r = s.k3snode(0, "wireguard", "show", "--json")
    assert r.returncode == 0, r.stdout
    assert {p["name"] for p in json.loads(r.stdout)["peers"]} == {"s2", "s3"}
    r = s.k3snode(0, "wireguard", "show")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith(f"{s.ifname[0]}: 2 peers, none stale")
    for name, pub in (("s2", s.pub[1]), ("s3", s.pub[2])):
        (line,) = [ln for ln in lines[1:] if f" {name} " in ln]
        assert line.split()[0] == "ok" and pub in line and "handshake never" not in line

    # 4. keep it up, as the daemon does
    s.watch()

    # 5. one server's public address changes, DNS still has the old one: roaming recovers it
    s.move(0, "172.31.1.12")
    for j in (1, 2):
        assert ping_within(s.ns[j], "10.99.0.1"), f"s{j + 1} lost s1 after it moved"
        ep = Userspace(s.ifname[j]).read().peer(s.pub[0]).endpoint
        assert ep == f"172.31.1.12:{PORT}"  # learnt from s1's keepalives
    s.write_hosts()  # DNS catches up later; harmless

    # 6. two servers move at once: neither can roam to the other, DNS re-resolution recovers
    s.move(1, "172.31.2.22")
    s.move(2, "172.31.3.33")
    assert not ping_within(s.ns[1], "10.99.0.3", timeout=4)  # as long as DNS has the old ones
    s.write_hosts()
    s.all_pairs_ping(timeout=30)
    assert Userspace(s.ifname[1]).read().peer(s.pub[2]).endpoint == f"172.31.3.33:{PORT}"
    # whichever re-resolved first set the new endpoint; the other then saw it roam
    assert f"peer s3 endpoint 172.31.3.2:{PORT} -> 172.31.3.33:{PORT} (changed)" in s.log(
        1
    ) or f"peer s2 endpoint 172.31.2.2:{PORT} -> 172.31.2.22:{PORT} (changed)" in s.log(2), s.log(
        1
    ) + s.log(2)
    for w in s.watchers:
        stop(w)
    s.watchers.clear()

    # 7. a peer removed from the settings disappears from the interface; then no-op again
    s.write_settings(0, [0, 1])
    r = s.k3snode(0, "wireguard", "up")
    assert r.returncode == 0 and f"peer {s.pub[2][:8]}… removed" in r.stdout, r.stdout
    assert [p.public_key for p in Userspace(s.ifname[0]).read().peers] == [s.pub[1]]
    assert not ping(s.ns[0], "10.99.0.3")
    assert ping_within(s.ns[0], "10.99.0.2")
    assert s.k3snode(0, "wireguard", "up").stdout.strip() == "unchanged"
