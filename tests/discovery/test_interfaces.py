"""Bare-metal discovery: global addresses on the default-route interface, read over real netlink
inside a network namespace with ``k3snode detect`` run there as a real process."""

from __future__ import annotations

import json

import pytest
from helpers import NetNS, run_k3snode

pytestmark = pytest.mark.netns

V4, V6 = "172.233.211.141", "2600:1900:4000::5"


def detect(ns: NetNS):
    r = run_k3snode(
        "detect", "--json", "--provider", "none", "--config", "/dev/null", netns=ns.name
    )
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def uplink(ns: NetNS, name: str = "eth0", *addrs: str) -> None:
    # veth: this kernel has no dummy module; the peer end stays down and unused
    ns.ip("link", "add", name, "type", "veth", "peer", "name", name[:13] + "-p")
    ns.ip("link", "set", name, "up")
    for a in addrs:
        ns.ip("addr", "add", a, "dev", name, *(("nodad",) if ":" in a else ()))


def test_public_dual_stack_on_the_default_route_interface():
    with NetNS.create() as ns:
        uplink(ns, "eth0", "10.1.2.3/24", f"{V4}/24", "2600:1900:4000::5/64")
        ns.ip("route", "add", "default", "dev", "eth0")
        ns.ip("-6", "route", "add", "default", "dev", "eth0")
        # a public address on another interface without the default route is not the node's
        uplink(ns, "eth1", "8.8.4.4/32")
        rc, out = detect(ns)
    assert rc == 0
    assert out["source"] == "interface" and out["provider"] is None
    assert (out["public_ipv4"], out["public_ipv6"]) == (V4, V6)
    assert out["private_ipv4"] == "10.1.2.3"


def test_only_private_addresses_means_none_found_with_a_reason():
    with NetNS.create() as ns:
        uplink(ns, "eth0", "10.1.2.3/24", "fd00::3/64")
        ns.ip("route", "add", "default", "dev", "eth0")
        ns.ip("-6", "route", "add", "default", "dev", "eth0")
        rc, out = detect(ns)
    assert rc == 1
    assert out["public_ipv4"] is None and out["public_ipv6"] is None
    assert out["private_ipv4"] == "10.1.2.3"
    assert any("10.1.2.3" in n and "private" in n for n in out["notes"])


def test_deprecated_ipv6_is_skipped():
    with NetNS.create() as ns:
        uplink(ns, "eth0", f"{V4}/24")
        ns.ip("addr", "add", "2600:1900:4000::dead/64", "dev", "eth0", "nodad",
              "preferred_lft", "0", "valid_lft", "3600")  # fmt: skip
        ns.ip("route", "add", "default", "dev", "eth0")
        ns.ip("-6", "route", "add", "default", "dev", "eth0")
        rc, out = detect(ns)
    assert rc == 0 and out["public_ipv4"] == V4
    assert out["public_ipv6"] is None


@pytest.mark.parametrize("name", ["wg0", "flannel-wg", "tailscale0", "cni0", "kube-ipvs0"])
def test_default_route_through_a_virtual_interface_is_not_the_node_address(name):
    with NetNS.create() as ns:
        uplink(ns, name, f"{V4}/32")
        ns.ip("route", "add", "default", "dev", name)
        rc, out = detect(ns)
    assert rc == 1 and out["public_ipv4"] is None
    assert any(name in n and "virtual" in n for n in out["notes"])


def test_no_default_route_says_so_and_exits_1():
    with NetNS.create() as ns:
        uplink(ns, "eth0", f"{V4}/24")
        r = run_k3snode("detect", "--provider", "none", "--config", "/dev/null", netns=ns.name)
    assert r.returncode == 1
    assert "no default route" in r.stdout and "--external-ip" in r.stdout
