"""The daemon against the fake cloud metadata service (``tests/fakes/imds.py``) inside the node's namespace: a re-associated address arrives by the poll, an outage changes
nothing and turns health degraded, then green. The node's NIC holds a private address, as on AWS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from daemon_node import make_node
from helpers import REPO, wait_for

FAKE_IMDS = os.path.join(REPO, "tests", "fakes", "imds.py")

pytestmark = pytest.mark.netns


class Imds:
    """The fake metadata service as a process in the node's namespace; state via a file."""

    def __init__(self, tmp_path, netns: str, **state) -> None:
        self.state_file = tmp_path / "imds-state.json"
        self._n = 0
        self.set(**state)
        cmd = [sys.executable, FAKE_IMDS, "--provider", "aws", "--bind", "127.0.0.1:0",
               "--state-file", str(self.state_file)]  # fmt: skip
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, *cmd], stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on"), line
        self.url = "http://" + line.split()[-1]

    def set(self, **state) -> None:
        self._n += 1
        self.state_file.write_text(json.dumps(state))
        t = time.time() + self._n  # the fake re-reads the file when its mtime changes
        os.utime(self.state_file, (t, t))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _node(tmp_path, **kw):
    return make_node(tmp_path, address="10.0.0.2/24", gateway="10.0.0.1", **kw)


def test_an_address_reassociated_in_the_cloud_arrives_by_the_poll(tmp_path):
    with _node(tmp_path, daemon={"poll_interval": 5, "confirm_delay": 0.5}) as node:
        imds = Imds(tmp_path, node.ns.name, ipv4="3.120.45.10", ipv6="")
        try:
            node.discovery = {"provider": "aws", "metadata_endpoint": imds.url}
            node.start()
            assert node.external_ips() == ["3.120.45.10"]
            wait_for(lambda: node.restarts(), 5, what="start-up restart")
            n = len(node.restarts())
            imds.set(ipv4="3.120.45.99", ipv6="")
            node.wait_external(["3.120.45.99"], timeout=15)
            wait_for(lambda: len(node.restarts()) == n + 1, 10, what="one restart")
            assert "3.120.45.99" in node.restarts()[-1]["config"]
            st = node.status_json()
            assert st["addresses"] == [
                {"address": "3.120.45.99", "family": "ipv4", "source": "metadata"}
            ]
            assert st["provider"] == "aws"
        finally:
            imds.close()


def test_a_metadata_outage_changes_nothing_and_health_recovers(tmp_path):
    with _node(tmp_path, grace=1.0, health_port=-1, daemon={"poll_interval": 5}) as node:
        imds = Imds(tmp_path, node.ns.name, ipv4="3.120.45.10", ipv6="")
        try:
            node.discovery = {"provider": "aws", "metadata_endpoint": imds.url, "timeout": 2}
            node.start()
            before = node.read_config()
            wait_for(lambda: node.restarts(), 5, what="start-up restart")
            n = len(node.restarts())
            imds.set(mode="disabled")
            node.signal(signal.SIGHUP)
            wait_for(lambda: node.http("/healthz")[0] == 503, 15, what="degraded")
            checks = {c["check"]: c for c in json.loads(node.http("/healthz")[1])["checks"]}
            assert checks["discovery"]["state"] == "failing"
            assert (
                "403" in checks["discovery"]["detail"]
                or "metadata" in checks["discovery"]["detail"]
            )
            time.sleep(6)  # a poll during the outage
            assert node.read_config() == before
            imds.set(mode="ok")
            node.signal(signal.SIGHUP)
            wait_for(lambda: node.http("/healthz")[0] == 200, 15, what="green again")
            assert node.read_config() == before
            assert len(node.restarts()) == n, "an outage never restarts K3s"
            metrics = node.http("/metrics")[1]
            assert "k3snode_discovery_failures_total{reason=" in metrics
        finally:
            imds.close()
