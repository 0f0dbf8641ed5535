"""GCP's metadata long-poll against a fake metadata server that holds requests as Google's does;
and the daemon asking for a pass the moment the metadata changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from daemon_node import make_node
from fakes import dmi_dir
from helpers import REPO, wait_for

from k3snode.discovery.errors import MetadataError
from k3snode.discovery.http import Client
from k3snode.discovery.providers import gcp


def Watch(url: str) -> gcp.Watch:  # a GCP watch on the one HTTP client
    return gcp.Watch(Client(gcp.BASE, float("inf"), override=url, attempts=1))


FAKE = os.path.join(REPO, "tests", "fakes", "gcp_longpoll.py")


class FakeGCP:
    def __init__(self, tmp_path, external_ip: str | None, netns: str | None = None) -> None:
        self.state = tmp_path / "gcp.json"
        self.set(external_ip)
        cmd = [sys.executable, FAKE, "--bind", "127.0.0.1:0", "--state-file", str(self.state)]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on"), line
        self.url = "http://" + line.split()[-1]

    def set(self, external_ip: str | None) -> None:
        self.state.write_text(json.dumps({"external_ip": external_ip}))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def fake(tmp_path):
    f = FakeGCP(tmp_path, "35.1.2.3")
    yield f
    f.close()


def test_the_first_call_reads_the_next_waits_for_a_change(fake):
    w = Watch(fake.url)
    assert w.wait(5) == "", "the first answer is the baseline, not a change"
    got = {}

    def waiter():
        t = time.monotonic()
        got["reason"] = w.wait(20)
        got["took"] = time.monotonic() - t

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "the request is held while nothing changes"
    fake.set("35.1.2.4")
    t.join(10)
    assert got["reason"] == "GCP metadata changed (external IP 35.1.2.4)"
    assert got["took"] < 5


def test_a_held_request_that_times_out_is_no_change(fake):
    w = Watch(fake.url)
    w.wait(5)
    assert w.wait(1) == ""


def test_not_gce_or_down_is_an_error(tmp_path, fake):
    fake.close()
    with pytest.raises(MetadataError):
        Watch(fake.url).wait(1)


@pytest.mark.netns
def test_the_daemon_passes_as_soon_as_the_metadata_changes(tmp_path):
    with make_node(
        tmp_path, address="10.0.0.2/24", gateway="10.0.0.1", daemon={"poll_interval": 3600}
    ) as node:
        gcp = FakeGCP(tmp_path, "35.1.2.3", netns=node.ns.name)
        try:
            # the cloud recognised from DMI, as on a real GCE VM
            node.discovery = {
                "provider": "auto",
                "dmi_dir": dmi_dir("gcp"),
                "metadata_endpoint": gcp.url,
            }
            node.start()
            assert node.external_ips() == ["35.1.2.3"]
            wait_for(lambda: "long-poll" in node.output(), 10, what="the long-poll to start")
            time.sleep(1)
            passes_before = node.output().count("pass requested")
            gcp.set("35.1.2.4")
            wait_for(
                lambda: (
                    "pass requested: GCP metadata changed (external IP 35.1.2.4)" in node.output()
                ),
                5,
                what="a pass asked for by the long-poll",
            )
            assert node.output().count("pass requested") == passes_before + 1
            node.wait_external(["35.1.2.4"], timeout=5)
        finally:
            gcp.close()
