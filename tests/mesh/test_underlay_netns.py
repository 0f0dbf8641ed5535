"""The underlay on one node in a namespace: settings changes converge, routes follow the peers,
and what the kernel cannot do is said in one line."""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
from helpers import REPO, NetNS, k3snode_cmd, run_k3snode, unique_name, veth, wait_for
from underlaytest import PUBS, peer_entry, underlay_toml
from wgtest import need_wireguard_go, ping_within

from k3snode.mesh.wg import preflight as wgp
from k3snode.mesh.wg.userspace import Userspace

pytestmark = pytest.mark.netns


@pytest.fixture
def node(root):
    need_wireguard_go()
    ifname = unique_name("ul")
    with NetNS.create() as ns:
        try:
            yield ns, ifname
        finally:
            ns.ip("link", "del", ifname, check=False)  # wireguard-go exits with its interface
            sock = f"/var/run/wireguard/{ifname}.sock"
            wait_for(lambda: not os.path.exists(sock), timeout=10, what=sock)


def _routes(ns, ifname):
    return sorted(ln.split()[0] for ln in ns.ip("route", "show", "dev", ifname).stdout.splitlines())


def test_settings_changes_converge(root, node):
    ns, ifname = node
    extra = f'interface = "{ifname}"'
    cfg = underlay_toml(
        root, peers=[peer_entry(1), peer_entry(2, address="10.98.0.3")], extra=extra
    )
    r = run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name)
    assert r.returncode == 0, r.stderr
    assert "route +10.98.0.3/32" in r.stdout
    assert _routes(ns, ifname) == ["10.98.0.3", "10.99.0.0/24"]
    dev = Userspace(ifname).read()
    assert dev.listen_port == 51822
    assert {p.public_key: p.allowed_ips for p in dev.peers} == {
        PUBS[1]: ("10.99.0.2/32",),
        PUBS[2]: ("10.98.0.3/32",),
    }
    # the names do not resolve here: peers are added without endpoint, and that is said
    assert "cannot resolve s2.example.net" in r.stderr and all(
        p.endpoint is None for p in dev.peers
    )

    # new address, new port, one peer's address and keepalive changed, the routed peer gone
    cfg = underlay_toml(
        root,
        address="10.99.1.1/24",
        peers=[peer_entry(1, address="10.99.1.2", keepalive=3, endpoint="192.0.2.2:51900")],
        extra=extra + "\nlisten_port = 51823",
    )
    r = run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    for want in ("address -10.99.0.1/24", "address +10.99.1.1/24", "listen port 51822 -> 51823",
                 "route -10.98.0.3/32", "peer 192.0.2.2 keepalive 20 -> 3",
                 "peer 192.0.2.2 allowed IPs -> 10.99.1.2/32"):  # fmt: skip
        assert any(want in line for line in out), (want, out, r.stderr)
    assert _routes(ns, ifname) == ["10.99.1.0/24"]
    (p,) = Userspace(ifname).read().peers
    assert (p.public_key, p.endpoint, p.keepalive) == (PUBS[1], "192.0.2.2:51900", 3)
    again = run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name)
    assert again.stdout.strip() == "unchanged", again.stdout

    # show: JSON with the peer's name and health
    r = run_k3snode("wireguard", "show", "--json", "--config", cfg, netns=ns.name)
    shown = json.loads(r.stdout)
    assert shown["facts"]["address"] == "10.99.1.1/24" and shown["facts"]["backend"] == "userspace"
    assert [x["endpoint"] for x in shown["peers"]] == ["192.0.2.2:51900"]


def test_userspace_never_without_kernel_wireguard(root, node):
    ns, ifname = node
    if wgp.kernel_wireguard()[0]:
        pytest.skip("this kernel has WireGuard")
    cfg = underlay_toml(root, extra=f'interface = "{ifname}"\nuserspace = "never"')
    r = run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name)
    assert r.returncode == 1 and "Traceback" not in r.stderr  # a runtime failure, not usage
    assert "userspace = never" in r.stderr and "the kernel has no WireGuard" in r.stderr
    assert not os.path.exists(f"/var/run/wireguard/{ifname}.sock")
    assert ifname not in ns.ip("link").stdout


def test_check_with_the_underlay_on(root, node):
    ns, ifname = node
    cfg = underlay_toml(
        root, peers=[peer_entry(0)], extra=f'interface = "{ifname}"\nlisten_port = 51824'
    )
    holder = ns.popen(["python3", "-c", "import socket,time; s=socket.socket(socket.AF_INET, "
                       "socket.SOCK_DGRAM); s.bind(('0.0.0.0', 51824)); print(1, flush=True); "
                       "time.sleep(60)"], stdout=-1, text=True)  # fmt: skip
    try:
        holder.stdout.readline()
        r = run_k3snode("check", "--json", "--mesh", "none", "--config", cfg, netns=ns.name)
    finally:
        holder.kill()
        holder.wait()
    found = [f for f in json.loads(r.stdout) if f["topic"] == "underlay"]
    assert found[0]["level"] == "ok" and found[0]["message"].startswith(f"{ifname} 10.99.0.1/24")
    msgs = [f["message"] for f in found]
    assert "no peers besides this node in [[underlay.peers]]" in msgs  # it skipped itself
    assert any(f"UDP 51824 is already held by python3 (pid {holder.pid})" in m for m in msgs), msgs


def test_the_keeper_and_the_check(root, node):
    """The daemon's way: one keeper makes the passes; the check judges what the last pass saw
    and reads nothing itself (it still answers after the interface is gone, until the next
    pass says so)."""
    ns, ifname = node
    cfg = underlay_toml(
        root, peers=[peer_entry(1, endpoint="192.0.2.2:51822")], extra=f'interface = "{ifname}"'
    )
    code = """
import json, logging, os, subprocess, sys, time
from k3snode.mesh.underlay import checks
from k3snode.mesh.underlay.keeper import Keeper
from k3snode.config.load import load
logging.basicConfig(level=logging.INFO)
s, ifname = load(sys.argv[1]), sys.argv[2]
k, out = Keeper(s), []
for _ in range(2):
    k.keep()
    out.append(checks.observe(s, k.seen, peer_judge=k.judge))
subprocess.run(["ip", "link", "del", ifname], check=True)
while os.path.exists(f"/var/run/wireguard/{ifname}.sock"):  # wireguard-go exits
    time.sleep(0.05)
out.append(checks.observe(s, k.seen, peer_judge=k.judge))
k.keep()
out.append(checks.observe(s, k.seen, peer_judge=k.judge))
print(json.dumps([[o.check, o.ok, o.detail, o.facts] for o in out]))
"""
    r = ns.exec("env", f"PYTHONPATH={REPO}", sys.executable, "-c", code, cfg, ifname, check=False)
    assert r.returncode == 0, r.stderr
    first, second, before, again = json.loads(r.stdout)
    assert first[0] == "underlay" and first[1], first  # one peer, no handshake yet: not stale
    assert first[3]["backend"] == "userspace" and first[3]["peers"] == "1"
    assert first[2] == second[2] == before[2]  # the check did not look at the interface
    assert r.stderr.count(f"created {ifname}") == 2  # the second pass changed nothing; the
    assert again[1] and again[2] == first[2]  # pass after the deletion made it again
    assert [p.endpoint for p in Userspace(ifname).read().peers] == ["192.0.2.2:51822"]


def test_ipv6_underlay_over_ipv6_endpoints(tmp_path):
    """IPv6 only: underlay addresses, public addresses, a bracketed literal and a name with an
    IPv6 address in the hosts file."""
    need_wireguard_go()
    names = [unique_name("ul"), unique_name("ul")]
    with NetNS.create() as a, NetNS.create() as b:
        veth(a, b, ["2001:db8:5::1/64"], ["2001:db8:5::2/64"])
        a.hosts("2001:db8:5::2 b.test\n")
        keys_ = []
        cfgs = []
        for i, (ns, ifname) in enumerate(zip((a, b), names)):
            (tmp_path / f"{i}").mkdir()
            cfg = tmp_path / f"{i}/c.toml"
            cfg.write_text(f'[underlay]\nenabled = true\ninterface = "{ifname}"\n'
                           f'address = "fd00:99::{i + 1}/64"\nkeepalive = 1\n'
                           f'private_key_file = "{tmp_path}/{i}/k"\n')  # fmt: skip
            r = run_k3snode("wireguard", "pubkey", "--config", str(cfg), netns=ns.name)
            keys_.append(r.stdout.strip())
            cfgs.append(cfg)
        try:
            peers = [("b.test", 2, keys_[1]), ("[2001:db8:5::1]", 1, keys_[0])]
            for i in range(2):
                host, j, pub = peers[i]
                with open(cfgs[i], "a") as f:
                    f.write(f'\n[[underlay.peers]]\npublic_key = "{pub}"\n'
                            f'endpoint = "{host}:51822"\naddress = "fd00:99::{j}"\n')  # fmt: skip
            for i in (1, 0):
                r = run_k3snode("wireguard", "up", "--config", str(cfgs[i]), netns=(a, b)[i].name)
                assert r.returncode == 0, r.stderr
            assert ping_within(a, "fd00:99::2")
            assert Userspace(names[0]).read().peers[0].endpoint == "[2001:db8:5::2]:51822"
            assert Userspace(names[1]).read().peers[0].allowed_ips == ("fd00:99::1/128",)
            for i, ns in enumerate((a, b)):
                r = run_k3snode("wireguard", "up", "--config", str(cfgs[i]), netns=ns.name)
                assert r.stdout.strip() == "unchanged", r.stdout
        finally:
            for ns, ifname in zip((a, b), names):
                ns.ip("link", "del", ifname, check=False)
            for ifname in names:
                sock = f"/var/run/wireguard/{ifname}.sock"
                wait_for(lambda sock=sock: not os.path.exists(sock), timeout=10, what=sock)


def test_a_crashed_wireguard_go_is_restarted_and_reconfigured(root, node):
    ns, ifname = node
    cfg = underlay_toml(
        root, peers=[peer_entry(1, endpoint="192.0.2.2:51822")], extra=f'interface = "{ifname}"'
    )
    assert run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name).returncode == 0
    u = Userspace(ifname)
    pid = u.server_pid()
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "wireguard-go"
    os.kill(pid, signal.SIGKILL)  # the wireguard-go k3snode started (its PID from the socket)
    wait_for(lambda: ifname not in ns.ip("link").stdout, what=f"{ifname} gone")
    r = run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name)
    assert r.returncode == 0, r.stderr
    assert f"created {ifname} (wireguard-go)" in r.stdout and "peer 192.0.2.2 added" in r.stdout
    assert u.server_pid() not in (None, pid)
    assert [p.endpoint for p in u.read().peers] == ["192.0.2.2:51822"]
    assert "10.99.0.1/24" in ns.ip("addr", "show", ifname).stdout


def test_without_net_admin_one_line(root, node):
    """Run without CAP_NET_ADMIN over the namespace (a user namespace): one line, exit 1 (a
    runtime failure, as for any other command denied a permission)."""
    ns, ifname = node
    cfg = underlay_toml(root, extra=f'interface = "{ifname}"')
    assert run_k3snode("wireguard", "up", "--config", cfg, netns=ns.name).returncode == 0
    ns.ip("addr", "flush", "dev", ifname)
    r = ns.exec("unshare", "--user", "--map-root-user", "env", f"PYTHONPATH={REPO}",
                *k3snode_cmd("wireguard", "up", "--config", cfg), check=False)  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().endswith(
        f"k3snode: error: underlay: setting the addresses of {ifname}: Operation not permitted"
    )
