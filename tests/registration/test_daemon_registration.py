"""``k3snode run`` as a server with a registration name, in a network namespace with a real BIND
(``tests/bind.py``) and the stub systemctl: the DNS update for a new address lands before K3s is
asked to restart (BIND's update log against the stub's record of the restart); a DNS outage
never holds the pass, turns the ``registration`` check failing after the grace period, and heals.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bind import NAME, Bind, available
from daemon_node import make_node
from helpers import REPO, wait_for

UDP_DELAY = os.path.join(REPO, "tests", "fakes", "udp_delay.py")

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not available(), reason="needs bind9 and bind9-dnsutils"),
]


def registration_toml(node, dns: Bind, **extra) -> str:
    key = os.path.join(node.root, "etc/k3snode/tsig.key")
    with open(dns.key_conf) as src, open(key, "w") as dst:
        dst.write(src.read())
    os.chmod(key, 0o600)
    values = {"name": NAME, "server": dns.server, "key_file": key, "timeout": 2, **extra}
    return "[registration]\n" + "".join(
        f"{k} = {v!r}\n".replace("'", '"') for k, v in values.items()
    )


def restart_times(node, address: str) -> list[float]:
    return [c["t"] for c in node.restarts() if address in c.get("config", "")]


def test_the_new_address_is_in_dns_before_k3s_is_restarted(tmp_path):
    with make_node(tmp_path, health_port=-1) as node:
        dns = Bind(node.ns.name)
        # A slow network to the DNS server (0.4 s each way in), slower than the stub systemctl:
        # the order below holds because k3snode waits, not by luck.
        slow = node.ns.popen(
            [sys.executable, UDP_DELAY, "--listen", "127.0.0.1:5354", "--to", dns.server,
             "--delay", "0.4"], stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert slow.stdout.readline().startswith("listening")
            dns.start()
            node.extra_toml = registration_toml(node, dns, server="127.0.0.1:5354")
            node.start()
            wait_for(lambda: restart_times(node, "5.6.7.8"), 15, what="the first restart")
            assert dns.records() == ["5.6.7.8"]
            assert dns.update_times("A 5.6.7.8")[0] < restart_times(node, "5.6.7.8")[0]
            text = node.read_config()
            assert f"tls-san:\n- {NAME}" in text

            node.addr("add", "9.9.9.9/24")
            node.addr("del", "5.6.7.8/24")
            node.wait_external(["9.9.9.9"])
            wait_for(lambda: restart_times(node, "9.9.9.9"), 15, what="the restart for 9.9.9.9")
            assert dns.records() == ["9.9.9.9"]  # 5.6.7.8 removed, 9.9.9.9 added, one update
            landed = dns.update_times("A 9.9.9.9")
            assert len(landed) == 1
            assert landed[0] < restart_times(node, "9.9.9.9")[0]
            assert len(dns.update_times("deleting an RR")) == 1

            st = wait_for(
                lambda: (r := node.status_json()["registration"])["published"] == ["9.9.9.9"] and r,
                10,
                what="status: 9.9.9.9 published",
            )
            assert st["name"] == NAME
            assert (
                st["last_update"]["ok"]
                and "published 9.9.9.9; removed 5.6.7.8" in (st["last_update"]["detail"])
            )
            human = node.status().stdout
            assert f"registration: {NAME} at 127.0.0.1:5354: 9.9.9.9" in human
            _, metrics = node.http("/metrics")
            assert (
                f'k3snode_registration_published_info{{address="9.9.9.9",name="{NAME}"}} 1.0'
                in (metrics)
            )
            assert "k3snode_registration_last_update_ok 1.0" in metrics
            assert 'k3snode_registration_updates_total{outcome="ok"} 2.0' in metrics
            node.notify.wait(f"{NAME} published")
        finally:
            node.stop()
            dns.close()
            slow.kill()
            slow.wait()


def test_a_dns_outage_never_holds_k3s_degrades_after_grace_and_heals(tmp_path):
    with make_node(tmp_path, health_port=-1, grace=1.0) as node:
        dns = Bind(node.ns.name)
        try:
            dns.start()
            node.extra_toml = registration_toml(node, dns, timeout=1, retry_max=2)
            node.start()
            wait_for(lambda: dns.records() == ["5.6.7.8"], 15, what="the first publish")
            dns.stop()
            node.addr("add", "9.9.9.9/24")
            node.addr("del", "5.6.7.8/24")
            # K3s is restarted with the new address although DNS does not answer (bounded hold).
            wait_for(lambda: restart_times(node, "9.9.9.9"), 20, what="the restart for 9.9.9.9")

            def failing():
                code, body = node.http("/healthz")
                return code == 503 and '"check": "registration"' in body and body

            body = wait_for(failing, 20, what="registration failing")
            assert f"{NAME} at 127.0.0.1:5353: no answer within 1s (timeout)" in body
            # The status file follows at the next report (every grace/2).
            st = wait_for(
                lambda: (s := node.status_json())["health"]["status"] == "degraded" and s,
                10,
                what="status degraded",
            )
            assert st["registration"]["published"] == ["5.6.7.8"]  # what DNS still holds
            assert not st["registration"]["last_update"]["ok"]
            assert "degraded (registration:" in node.notify.wait("degraded (registration:")
            errors = [ln for ln in node.output().splitlines() if "registration:" in ln and
                      "no answer" in ln and "retrying" in ln]  # fmt: skip
            assert len(errors) == 1  # one line for the outage, not one per retry

            dns.start()
            wait_for(lambda: dns.records() == ["9.9.9.9"], 20, what="the update after the outage")
            wait_for(lambda: node.http("/healthz")[0] == 200, 20, what="health back to ok")
            st = wait_for(
                lambda: (r := node.status_json()["registration"])["published"] == ["9.9.9.9"] and r,
                10,
                what="status: 9.9.9.9 published",
            )
            assert st["last_update"]["ok"]
            assert st["updates"]["error"] >= 1
        finally:
            node.stop()
            dns.close()
