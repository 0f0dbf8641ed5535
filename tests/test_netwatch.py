"""The rtnetlink subscription in a real network namespace: which kernel events ask for a pass."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from helpers import REPO, NetNS, clean_env, veth

pytestmark = pytest.mark.netns

WATCHER = """
import json, select, sys, time
from k3snode.daemon.netwatch import Watch
w = Watch()
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    r, _, _ = select.select([w], [], [], 0.1)
    if r:
        for reason in w.read():
            print(json.dumps(reason), flush=True)
"""


def _watch(ns: NetNS, actions, seconds: float = 2.0) -> list[str]:
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns.name, sys.executable, "-c", WATCHER, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )
    assert p.stdout.readline().strip() == "ready"
    actions()
    out, _ = p.communicate(timeout=seconds + 10)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_address_and_default_route_changes_are_seen_and_noise_is_not():
    with NetNS.create() as ns, NetNS.create("k3sr") as peer:
        dev, _ = veth(ns, peer)
        ns.ip("link", "add", "cni0", "type", "bridge")
        ns.ip("link", "set", "cni0", "up")

        def actions():
            ns.ip("addr", "add", "10.42.0.1/24", "dev", "cni0")  # virtual interface: ignored
            ns.ip("addr", "add", "fe80::99/64", "dev", dev)  # link scope: ignored
            ns.ip("route", "add", "192.0.2.0/24", "dev", dev)  # not a default route: ignored
            time.sleep(0.2)
            ns.ip("addr", "add", "5.6.7.8/24", "dev", dev)
            ns.ip("route", "add", "default", "via", "5.6.7.1", "dev", dev)
            ns.ip("-6", "addr", "add", "2a01:4f8::5/64", "dev", dev, "nodad")
            ns.ip("route", "del", "default")
            ns.ip("addr", "del", "5.6.7.8/24", "dev", dev)

        reasons = _watch(ns, actions)
    assert f"address 5.6.7.8 added on {dev}" in reasons
    assert "default route added" in reasons
    assert f"address 2a01:4f8::5 added on {dev}" in reasons
    assert "default route removed" in reasons
    assert any(r.startswith("address 5.6.7.8 removed") for r in reasons)
    assert not [r for r in reasons if "10.42.0.1" in r or "fe80" in r or "cni0" in r]
    assert len(reasons) == 5, reasons
