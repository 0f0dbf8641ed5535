"""The stdlib rtnetlink reader against real kernels' answers, compared with ``ip -json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, NetNS

pytestmark = pytest.mark.netns


def dump_in(ns: NetNS) -> dict:
    code = (
        "import json, socket\n"
        "from k3snode.discovery import rtnl\n"
        "print(json.dumps({\n"
        "  'links': {l.name: l.index for l in rtnl.links()},\n"
        "  'v4': [[a.index, a.address, a.prefixlen, a.scope, a.flags] for a in rtnl.addresses(socket.AF_INET)],\n"
        "  'v6': [[a.index, a.address, a.prefixlen, a.scope, a.flags] for a in rtnl.addresses(socket.AF_INET6)],\n"
        "  'r4': [[r.dst_len, r.table, r.type, r.priority, list(r.oifs)] for r in rtnl.routes(socket.AF_INET)],\n"
        "  'r6': [[r.dst_len, r.table, r.type, r.priority, list(r.oifs)] for r in rtnl.routes(socket.AF_INET6)],\n"
        "}))\n"
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": REPO}
    out = subprocess.run(["ip", "netns", "exec", ns.name, sys.executable, "-c", code],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return json.loads(out.stdout)


def ipj(ns: NetNS, *args: str):
    return json.loads(ns.ip("-j", *args).stdout or "[]")


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


def test_many_addresses_span_several_receive_buffers():
    with NetNS.create() as ns:
        ns.ip("link", "add", "big0", "type", "veth", "peer", "name", "big0p")
        for i in range(1, 400):
            ns.ip("addr", "add", f"5.75.{i // 250}.{i % 250 + 1}/32", "dev", "big0")
        got = dump_in(ns)
    assert len([a for a in got["v4"] if a[1].startswith("5.75.")]) == 399
