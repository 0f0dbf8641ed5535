"""Embedded etcd across three clouds over the k3snode underlay, through the faults a multi-cloud
server meets: a real 3-member etcd (Debian's 3.4, K3s's heartbeat and election timeout) on the
underlay addresses k3snode writes as ``node-ip``, a writer outside the faults, and after every
fault: all members healthy, every acknowledged write present on every member and in order.

The bounds asserted are the issue's goals (10 s after an address change or a killed wireguard-go,
30 s after a double change via DNS, no leader election during a k3snode restart or upgrade); the
precise figures are in benchmarks/etcd_underlay.py."""

from __future__ import annotations

import time

import pytest
from cloudlab import PORT, Lab, have_lab_tools, measure
from helpers import wait_for

from k3snode.mesh.wg.userspace import Userspace

pytestmark = pytest.mark.netns


@pytest.fixture
def lab(tmp_path):
    missing = have_lab_tools()
    if missing:
        pytest.skip(f"needs {missing} (tests/apt-packages.txt)")
    with Lab(tmp_path) as lab:
        yield lab


def endpoint(lab: Lab, at: int, of: int) -> str | None:
    peer = Userspace(lab.clouds[at].ifname).read().peer(lab.clouds[of].pubkey)
    return peer.endpoint if peer else None


def test_lab_is_three_clouds_behind_nat_with_etcd_on_node_ip(lab):
    for cl in lab.clouds:
        # the node holds only its private address; its public one lives on the router
        addrs = cl.node.ip("-o", "addr", "show").stdout
        assert cl.public not in addrs and cl.private in addrs
        assert cl.public in cl.router.ip("-o", "addr", "show", "dev", cl.uplink).stdout
        # k3snode recognised the cloud and took the public address from its metadata service
        log = lab.k3snode_log(cl)
        assert "Traceback" not in log, log
        wait_for(lambda cl=cl: f"- {cl.public}" in (cl.root / "etc/k3s.yaml").read_text(),
                 timeout=30, what=f"{cl.name} node-external-ip")  # fmt: skip
        assert any(r["path"].startswith(("/latest/", "/computeMetadata/", "/hetzner/"))
                   for r in cl.imds.requests())  # fmt: skip
        assert lab.node_ip(cl) == cl.underlay
    # peers know each other by their public (NATed) addresses, learnt from DNS names
    assert endpoint(lab, 2, 0) == f"{lab.clouds[0].public}:{PORT}"
    assert lab.healthy()


def test_a_public_address_reassociated(lab):
    s1 = lab.clouds[0]
    out = measure(lab, "reassociate", lambda: lab.reassociate(s1, "3.120.45.77"))
    assert out.recovery <= 10, out
    assert endpoint(lab, 2, 0) == f"3.120.45.77:{PORT}"  # roamed (or re-resolved)
    # the metadata answers the new address: k3snode moves node-external-ip, node-ip stays
    wait_for(lambda: "- 3.120.45.77" in (s1.root / "etc/k3s.yaml").read_text(),
             timeout=30, what="node-external-ip follows the metadata")  # fmt: skip
    assert lab.node_ip(s1) == s1.underlay


def test_b_two_addresses_change_at_once_dns(lab):
    s1, s2 = lab.clouds[0], lab.clouds[1]

    def move_both():
        lab.reassociate(s1, "3.120.45.88", dns=False)
        lab.reassociate(s2, "34.89.12.88", dns=False)
        lab.write_hosts()  # dynamic DNS updates both names

    out = measure(lab, "double change", move_both)
    assert out.recovery <= 30, out
    assert endpoint(lab, 0, 1) == f"34.89.12.88:{PORT}"
    assert endpoint(lab, 1, 0) == f"3.120.45.88:{PORT}"
    logs = lab.k3snode_log(s1) + lab.k3snode_log(s2)
    assert "resolves to" in logs, logs[-3000:]


def test_c_k3snode_stopped_restarted_upgraded(lab):
    s1 = lab.clouds[0]
    pid = lab.wireguard_go_pid(s1)
    pids = []

    def cycle():
        lab.stop_k3snode(s1)
        pids.append(lab.wireguard_go_pid(s1))
        time.sleep(3)  # stopped for a while: etcd keeps talking over the underlay
        lab.start_k3snode(s1)
        wait_for(lambda: lab.k3snode_log(s1).count("exists (userspace): using it") >= 1,
                 timeout=60, what="restarted k3snode found the interface")  # fmt: skip
        lab.upgrade_k3snode(s1)
        wait_for(lambda: lab.k3snode_log(s1).count("exists (userspace): using it") >= 2,
                 timeout=60, what="upgraded k3snode found the interface")  # fmt: skip
        pids.append(lab.wireguard_go_pid(s1))

    out = measure(lab, "k3snode restart/upgrade", cycle, leader=s1)  # s1 leads: the worst case
    assert pids == [pid, pid]  # the same wireguard-go throughout
    assert out.leader_changes == 0, out  # the goal: no election at all
    assert "Traceback" not in lab.k3snode_log(s1)


def test_d_wireguard_go_killed(lab):
    s1 = lab.clouds[0]
    old = lab.wireguard_go_pid(s1)
    out = measure(lab, "wireguard-go killed", lambda: lab.kill_wireguard_go(s1), leader=s1)
    assert out.recovery <= 10, out
    new = lab.wireguard_go_pid(s1)
    assert new is not None and new != old  # k3snode started a new one and configured it
    assert lab.k3snode_log(s1).count(f"created {s1.ifname} (wireguard-go)") == 2


def test_e_cloud_partitioned_30s(lab):
    s1 = lab.clouds[0]
    out = measure(
        lab, "partition 30 s", lambda: (lab.partition(s1), time.sleep(30)), lambda: lab.heal(s1)
    )
    assert out.acked > 0 and out.unavailable < 30, out  # the majority kept accepting writes


def test_f_server_reboots(lab):
    s1 = lab.clouds[0]
    key = (s1.root / "var/lib/k3snode/underlay.key").read_bytes()
    out = measure(lab, "reboot", lambda: lab.crash(s1), lambda: lab.boot(s1))
    assert (s1.root / "var/lib/k3snode/underlay.key").read_bytes() == key
    assert Userspace(s1.ifname).read().public_key == s1.pubkey
    assert out.acked > 0, out
