"""A K3s unit named with INSTALL_K3S_NAME (``k3s-edge``) under a real systemd: ``k3snode apply``
writes its drop-in, and one boot transaction then starts K3s only after k3snode has written the
config — which ``Before=k3s.service k3s-agent.service`` in k3snode's unit cannot promise for
``k3s-edge``.

Upstream: K3s ``install.sh`` (main 66a14f0e; shared/reference/k3s.md §6): the unit is
``k3s-${INSTALL_K3S_NAME}``, its env file ``/etc/systemd/system/k3s-${INSTALL_K3S_NAME}.service.env``.
"""

from __future__ import annotations

import json

import pytest
from daemon_nspawn import boot, missing_tools
from helpers import NetNS, have, veth, wait_for

pytestmark = pytest.mark.system

FAKE_K3S = """#!/usr/bin/python3
# Stub K3s: records the config it saw at start, READY=1, idles.
import json, os, socket, time
cfg = "/etc/rancher/k3s/config.yaml"
seen = open(cfg).read() if os.path.exists(cfg) else None
with open("/var/log/fake-k3s.jsonl", "a") as f:
    f.write(json.dumps({"config": seen}) + "\\n")
addr = os.environ.get("NOTIFY_SOCKET", "")
if addr:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1", "\\0" + addr[1:] if addr.startswith("@") else addr)
while True:
    time.sleep(3600)
"""

# as K3s's installer writes it: nothing about k3snode
K3S_EDGE_UNIT = """[Unit]
Description=stub K3s (INSTALL_K3S_NAME=edge)
Wants=network-online.target
After=network-online.target
[Service]
Type=notify
ExecStart=/usr/local/bin/fake-k3s
TimeoutStartSec=0
KillMode=process
"""

# k3snode's ordering as shipped, with a slow start so a missing After= would show
K3SNODE_UNIT = """[Unit]
Description=k3snode
Before=k3s.service k3s-agent.service
[Service]
Type=notify
ExecStartPre=/bin/sleep 2
ExecStart=/usr/local/bin/k3snode run
NotifyAccess=main
"""

BOOT_TARGET = """[Unit]
Description=what multi-user.target does at boot: pull in both at once
Wants=k3s-edge.service k3snode.service
"""

WRAPPER = """#!/bin/sh
PYTHONPATH=/opt/k3snode exec /usr/bin/python3 -m k3snode "$@"
"""

SETTINGS = """[node]
role = "server"
mesh = "none"
[k3s]
unit = "k3s-edge"
[discovery]
provider = "none"
external_ips = ["192.0.2.7"]
[health]
port = 0
"""


@pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")
@pytest.mark.skipif(not have("ip"), reason="needs iproute2")
def test_apply_orders_a_custom_named_k3s_unit_after_k3snode(tmp_path):
    with NetNS.create() as ns, NetNS.create("k3so") as other:
        veth(ns, other)
        with boot(ns.name, str(tmp_path / "nspawn.log")) as c:
            c.write("/usr/local/bin/fake-k3s", FAKE_K3S, "0755")
            c.write("/usr/local/bin/k3snode", WRAPPER, "0755")
            c.write("/etc/systemd/system/k3s-edge.service", K3S_EDGE_UNIT)
            c.write("/etc/systemd/system/k3snode.service", K3SNODE_UNIT)
            c.write("/etc/k3snode/config.toml", SETTINGS)
            c.run("systemctl", "daemon-reload")
            assert "k3snode.service" not in c.show("k3s-edge.service", "After")["After"]
            check = c.run("/usr/local/bin/k3snode", "check", check=False).stdout
            assert "k3s-edge.service may start before k3snode" in check

            r = c.run("/usr/local/bin/k3snode", "apply", "--no-restart")
            dropin = "/etc/systemd/system/k3s-edge.service.d/10-k3snode.conf"
            assert f"written {dropin}: k3s-edge.service starts after k3snode" in r.stdout
            st = c.show("k3s-edge.service", "After", "DropInPaths")
            assert "k3snode.service" in st["After"].split()
            assert dropin in st["DropInPaths"].split()
            again = c.run("/usr/local/bin/k3snode", "apply", "--no-restart").stdout
            assert "10-k3snode.conf" not in again  # unchanged: not written again
            check = c.run("/usr/local/bin/k3snode", "check", check=False).stdout
            assert f"k3s-edge.service is ordered after k3snode ({dropin})" in check

            # A boot in one transaction: K3s starts only after k3snode wrote a fresh config.
            c.run("rm", "-f", "/etc/rancher/k3s/config.yaml")
            # one transaction, as multi-user.target's at boot (two `systemctl start` calls would
            # be two transactions, and a job queued alone does not wait for one queued later)
            c.write("/etc/systemd/system/boot-both.target", BOOT_TARGET)
            c.run("systemctl", "daemon-reload")
            c.run("systemctl", "start", "boot-both.target", timeout=60)

            def starts():
                out = c.run("cat", "/var/log/fake-k3s.jsonl", check=False).stdout
                return [json.loads(line) for line in out.splitlines() if line.strip()]

            wait_for(lambda: len(starts()) == 1, 30, what="K3s's start")
            seen = starts()[0]["config"]
            journal = c.run("journalctl", "--no-pager", "-o", "short-monotonic", "-u",
                            "k3snode.service", "-u", "k3s-edge.service", check=False).stdout  # fmt: skip
            assert seen is not None and "192.0.2.7" in seen, journal
