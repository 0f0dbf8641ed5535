"""The stdlib rtnetlink codec (``k3snode/netlink.py``): dumps against real kernels' answers,
compared with ``ip -json``; events parsed from datagrams built by hand, garbage included."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys

import pytest
from helpers import REPO, NetNS


def _msg(mtype: int, payload: bytes) -> bytes:
    length = 16 + len(payload)
    return struct.pack("=IHHII", length, mtype, 0, 0, 0) + payload + b"\0" * (-length % 4)


def _attr(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + b"\0" * (-length % 4)


def test_events_are_parsed_and_garbage_is_skipped():
    from k3snode import netlink

    addr = struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 7) + _attr(
        netlink.IFA_LOCAL, socket.inet_aton("5.6.7.8")
    )
    route = struct.pack("=BBBBBBBBI", socket.AF_INET6, 0, 0, 0, 254, 4, 0, 1, 0) + _attr(
        netlink.RTA_TABLE, struct.pack("=I", 254)
    )
    data = (
        _msg(netlink.RTM_NEWADDR, addr)
        + _msg(netlink.RTM_DELROUTE, route)
        + _msg(netlink.RTM_NEWADDR, b"\x02")  # too short: skipped
        + _msg(netlink.RTM_NEWADDR, addr[:8] + _attr(netlink.IFA_LOCAL, b"\x01\x02"))
    )
    changes = list(netlink.parse_events(data + b"\xff" * 7))  # a torn tail ends the parse
    assert changes[0] == netlink.Change(True, netlink.Addr(socket.AF_INET, 7, 24, 0, 0, "5.6.7.8"))
    assert changes[1].added is False and isinstance(changes[1].item, netlink.Route)
    assert (changes[1].item.table, changes[1].item.dst_len) == (254, 0)
    assert changes[2].item.address is None  # a 2-byte address is no address
    assert len(changes) == 3


def dump_in(ns: NetNS) -> dict:
    code = (
        "import json, socket\n"
        "from k3snode import netlink\n"
        "print(json.dumps({\n"
        "  'links': {l.name: l.index for l in netlink.links()},\n"
        "  'v4': [[a.index, a.address, a.prefixlen, a.scope, a.flags] for a in netlink.addresses(socket.AF_INET)],\n"
        "  'v6': [[a.index, a.address, a.prefixlen, a.scope, a.flags] for a in netlink.addresses(socket.AF_INET6)],\n"
        "  'r4': [[r.dst_len, r.table, r.type, r.priority, list(r.oifs)] for r in netlink.routes(socket.AF_INET)],\n"
        "  'r6': [[r.dst_len, r.table, r.type, r.priority, list(r.oifs)] for r in netlink.routes(socket.AF_INET6)],\n"
        "}))\n"
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": REPO}
    out = subprocess.run(["ip", "netns", "exec", ns.name, sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return json.loads(out.stdout)


def ipj(ns: NetNS, *args: str):
    return json.loads(ns.ip("-j", *args).stdout or "[]")


@pytest.mark.netns
def test_links_addresses_and_routes_match_iproute2():
    with NetNS.create() as ns:
        for n in ("up0", "up1"):
            ns.ip("link", "add", n, "type", "veth", "peer", "name", f"{n}p")
            ns.ip("link", "set", n, "up")
            ns.ip("link", "set", f"{n}p", "up")
        ns.ip("addr", "add", "5.75.1.2/24", "dev", "up0")
        ns.ip("addr", "add", "10.9.0.2/24", "dev", "up1")
        ns.ip("addr", "add", "2a01:4f8:c17:1234::2/64", "dev", "up0", "nodad")
        ns.ip("addr", "add", "2a01:4f8:c17:1234::dead/64", "dev", "up0", "nodad",
              "preferred_lft", "0", "valid_lft", "3600")  # fmt: skip
        ns.ip("route", "add", "default", "metric", "50", "nexthop", "via", "5.75.1.1", "dev", "up0",
              "nexthop", "via", "10.9.0.1", "dev", "up1")  # fmt: skip
        ns.ip("route", "add", "default", "via", "10.9.0.1", "dev", "up1", "metric", "100")
        ns.ip("-6", "route", "add", "default", "via", "2a01:4f8:c17:1234::1", "dev", "up0")
        got = dump_in(ns)
        links = {link["ifname"]: link["ifindex"] for link in ipj(ns, "link", "show")}
    assert got["links"] == links
    v4 = {(a[1], a[2]) for a in got["v4"]}
    assert {("5.75.1.2", 24), ("10.9.0.2", 24), ("127.0.0.1", 8)} <= v4
    dead = [a for a in got["v6"] if a[1] == "2a01:4f8:c17:1234::dead"]
    assert dead and dead[0][4] & 0x20  # IFA_F_DEPRECATED from the 32-bit IFA_FLAGS
    defaults4 = sorted((r[3], r[4]) for r in got["r4"] if r[0] == 0 and r[1] == 254)
    assert defaults4 == [(50, [links["up0"], links["up1"]]), (100, [links["up1"]])]
    defaults6 = [r for r in got["r6"] if r[0] == 0 and r[1] == 254]
    assert defaults6 and defaults6[0][4] == [links["up0"]]


@pytest.mark.netns
def test_many_addresses_span_several_receive_buffers():
    with NetNS.create() as ns:
        ns.ip("link", "add", "big0", "type", "veth", "peer", "name", "big0p")
        for i in range(1, 400):
            ns.ip("addr", "add", f"5.75.{i // 250}.{i % 250 + 1}/32", "dev", "big0")
        got = dump_in(ns)
    assert len([a for a in got["v4"] if a[1].startswith("5.75.")]) == 399


def _in(ns: NetNS, code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": REPO}
    out = subprocess.run(["ip", "netns", "exec", ns.name, sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return json.loads(out.stdout)


LINK_CODE = """
import json, sys
from k3snode import netlink
out = {}
def refused(fn, *args):
    try:
        fn(*args)
    except netlink.Refused as e:
        return e.errno
for kind in ("dummy", "ifb", "bridge"):  # the first this kernel has
    if refused(netlink.create_link, "made0", kind) is None:
        out["kind"] = kind
        break
def plain(link):
    return None if link is None else [link.index, link.name, link.flags]
out["made"] = plain(netlink.link("made0"))
out["existing"] = plain(netlink.link("up0"))
out["again"] = refused(netlink.create_link, "made0", out["kind"])
out["no such kind"] = refused(netlink.create_link, "made1", "no-such-kind")
out["deleted"] = refused(netlink.delete_link, "made0")
out["gone"] = plain(netlink.link("made0"))
out["delete again"] = refused(netlink.delete_link, "made0")
print(json.dumps(out))
"""


@pytest.mark.netns
def test_one_link_by_name_and_a_link_created_and_deleted_as_iproute2_sees_them():
    import errno

    with NetNS.create() as ns:
        ns.ip("link", "add", "up0", "type", "veth", "peer", "name", "up0p")
        got = _in(ns, LINK_CODE)
        links = {link["ifname"]: link for link in ipj(ns, "link", "show")}
    assert got["existing"][:2] == [links["up0"]["ifindex"], "up0"]
    assert got["made"][1] == "made0" and got["made"][0] > links["up0p"]["ifindex"]
    assert "made0" not in links and "made1" not in links  # deleted; never made
    assert got["again"] == errno.EEXIST  # NLM_F_EXCL
    assert got["no such kind"] == errno.EOPNOTSUPP
    assert got["deleted"] is None and got["gone"] is None
    assert got["delete again"] == errno.ENODEV
