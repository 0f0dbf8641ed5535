"""``k3snode run`` under a real systemd (PID 1 in systemd-nspawn) with a stub K3s unit that records
each start and the config it saw. The container lives in a network namespace with a veth; the test
changes addresses from outside, as a cloud or DHCP would."""

from __future__ import annotations

import json
import os
import time

import pytest
from daemon_nspawn import boot, missing_tools
from helpers import NetNS, have, veth, wait_for

pytestmark = pytest.mark.system

FAKE_K3S = """#!/usr/bin/python3
# Stub K3s: records each start with the config it saw, tells systemd READY=1 (Type=notify), idles.
import json, os, socket, time
cfg = "/etc/rancher/k3s/config.yaml"
seen = open(cfg).read() if os.path.exists(cfg) else None
with open("/var/log/fake-k3s.jsonl", "a") as f:
    f.write(json.dumps({"t": time.time(), "pid": os.getpid(), "config": seen}) + "\\n")
addr = os.environ.get("NOTIFY_SOCKET", "")
if addr:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1", "\\0" + addr[1:] if addr.startswith("@") else addr)
while True:
    time.sleep(3600)
"""

K3S_UNIT = """[Unit]
Description=stub K3s
After=k3snode.service
[Service]
Type=notify
ExecStart=/usr/local/bin/fake-k3s
TimeoutStartSec=0
KillMode=process
Restart=always
RestartSec=5s
"""

K3SNODE_UNIT = """[Unit]
Description=k3snode
Before=k3s.service
[Service]
Type=notify
ExecStart=/usr/local/bin/k3snode run
ExecReload=/bin/sh -c "kill -HUP ${MAINPID}"
WatchdogSec=3
NotifyAccess=main
Restart=on-failure
Environment=K3S_TOKEN=s3cr3t-token-in-env
"""

WRAPPER = """#!/bin/sh
PYTHONPATH=/opt/k3snode exec /usr/bin/python3 -m k3snode "$@"
"""

SETTINGS = """[node]
role = "server"
mesh = "none"
[discovery]
provider = "none"
[daemon]
debounce = 0.3
confirm_delay = 0.5
min_restart_interval = 1
restart_timeout = 20
[health]
port = 9181
grace = 5
"""


def _starts(c) -> list[dict]:
    out = c.run("cat", "/var/log/fake-k3s.jsonl", check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())}")
@pytest.mark.skipif(not have("ip"), reason="needs iproute2")
def test_address_change_restarts_k3s_once_and_a_stopped_k3s_stays_stopped(tmp_path):
    with NetNS.create() as ns, NetNS.create("k3sr") as router:
        dev, _ = veth(ns, router)
        ns.ip("addr", "add", "5.6.7.8/24", "dev", dev)
        ns.ip("route", "add", "default", "via", "5.6.7.1", "dev", dev, "onlink")
        with boot(ns.name, str(tmp_path / "nspawn.log")) as c:
            c.write("/usr/local/bin/fake-k3s", FAKE_K3S, "0755")
            c.write("/usr/local/bin/k3snode", WRAPPER, "0755")
            c.write("/etc/systemd/system/k3s.service", K3S_UNIT)
            c.write("/etc/systemd/system/k3snode.service", K3SNODE_UNIT)
            c.write("/etc/k3snode/config.toml", SETTINGS)
            c.run("systemctl", "daemon-reload")
            # Boot order: k3snode first (READY after the config is written), then K3s.
            c.run("systemctl", "start", "k3snode.service", timeout=60)
            st = c.show("k3snode.service", "ActiveState", "StatusText", "WatchdogUSec")
            assert st["ActiveState"] == "active"
            assert "5.6.7.8 (interface)" in st["StatusText"]
            assert st["WatchdogUSec"] == "3s"
            assert "5.6.7.8" in c.run("cat", "/etc/rancher/k3s/config.yaml").stdout
            c.run("systemctl", "start", "k3s.service")
            wait_for(lambda: len(_starts(c)) == 1, 20, what="K3s's first start")
            assert "5.6.7.8" in _starts(c)[0]["config"]

            # An address change: exactly one restart, and K3s saw the new config.
            ns.ip("addr", "add", "9.9.9.9/24", "dev", dev)
            ns.ip("addr", "del", "5.6.7.8/24", "dev", dev)
            ns.ip("route", "replace", "default", "via", "9.9.9.1", "dev", dev, "onlink")
            wait_for(lambda: len(_starts(c)) == 2, 30, what="K3s restarted")
            time.sleep(3)
            starts = _starts(c)
            assert len(starts) == 2, "exactly one restart"
            assert "9.9.9.9" in starts[1]["config"] and "5.6.7.8" not in starts[1]["config"]
            assert c.show("k3s.service", "ActiveState")["ActiveState"] == "active"
            status = json.loads(c.run("/usr/local/bin/k3snode", "status", "--json").stdout)
            assert status["last_restart"]["outcome"] == "restarted"
            assert [a["address"] for a in status["addresses"]] == ["9.9.9.9"]
            wait_for(
                lambda: "9.9.9.9" in c.show("k3snode.service", "StatusText")["StatusText"],
                10,
                what="STATUS= with the new address",
            )
            healthz = c.run(
                "python3", "-c",
                "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9181/healthz').read().decode())",
            ).stdout  # fmt: skip
            assert json.loads(healthz)["status"] == "ok"

            # K3s stopped by the operator: the config follows the address, K3s stays stopped.
            c.run("systemctl", "stop", "k3s.service")
            ns.ip("addr", "add", "8.8.4.4/24", "dev", dev)
            ns.ip("addr", "del", "9.9.9.9/24", "dev", dev)
            ns.ip("route", "replace", "default", "via", "8.8.4.1", "dev", dev, "onlink")
            wait_for(
                lambda: "8.8.4.4" in c.run("cat", "/etc/rancher/k3s/config.yaml").stdout,
                20,
                what="config follows the address",
            )
            time.sleep(2)
            assert c.show("k3s.service", "ActiveState")["ActiveState"] == "inactive"
            assert len(_starts(c)) == 2, "a stopped K3s is never started"
            journal = c.run("journalctl", "-u", "k3snode.service", "--no-pager", "-o", "cat").stdout
            assert "external address changed from 5.6.7.8 to 9.9.9.9" in journal
            assert "K3s not restarted" in journal
            assert "s3cr3t-token-in-env" not in journal
            # The token K3S_TOKEN gave is a 0600 file, never in config.yaml.
            mode = c.run("stat", "-c", "%a", "/var/lib/k3snode/token").stdout.strip()
            assert mode == "600"
            # WatchdogSec=3 over the whole test: the main loop kept pinging.
            st = c.show("k3snode.service", "ActiveState", "NRestarts", "Result")
            assert st == {"ActiveState": "active", "NRestarts": "0", "Result": "success"}
            # SIGHUP via systemctl reload, then a clean stop.
            c.run("systemctl", "reload", "k3snode.service")
            assert c.show("k3snode.service", "ActiveState")["ActiveState"] == "active"
            c.run("systemctl", "stop", "k3snode.service")
            st = c.show("k3snode.service", "ActiveState", "Result")
            assert st == {"ActiveState": "inactive", "Result": "success"}
            assert os.path.exists(str(tmp_path / "nspawn.log"))
