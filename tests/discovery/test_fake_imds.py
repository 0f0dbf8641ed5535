"""The fake metadata service itself (other tests and engineers rely on it): runnable standalone,
changeable at runtime through its control endpoint and through a watched state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from fakes.imds import PROVIDERS, FakeIMDS
from helpers import REPO, free_port, wait_for

IMDS = os.path.join(REPO, "tests", "fakes", "imds.py")


def fetch(url: str, data: bytes | None = None, method: str | None = None, headers=None):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def standalone(tmp_path):
    port = free_port()
    state_file = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, IMDS, "--provider", "exoscale", "--bind", f"127.0.0.1:{port}",
         "--ipv4", "89.145.160.5", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().startswith("listening on 127.0.0.1:")
    yield f"http://127.0.0.1:{port}", state_file
    proc.terminate()
    proc.wait(timeout=10)


def test_control_endpoint_changes_answers_and_lists_requests(standalone):
    url, _ = standalone
    leaf = f"{url}/1.0/meta-data/public-ipv4"
    assert fetch(leaf) == (200, "89.145.160.5")
    status, body = fetch(
        f"{url}/__fake__/state", json.dumps({"ipv4": "89.145.160.6"}).encode(), "POST"
    )
    assert status == 200 and json.loads(body)["ipv4"] == "89.145.160.6"
    assert fetch(leaf) == (200, "89.145.160.6")
    log = json.loads(fetch(f"{url}/__fake__/requests")[1])
    assert [r["path"] for r in log] == ["/1.0/meta-data/public-ipv4"] * 2
    assert fetch(f"{url}/__fake__/requests", method="DELETE")[0] == 200
    assert json.loads(fetch(f"{url}/__fake__/requests")[1]) == []
    assert fetch(f"{url}/__fake__/state", b'{"mode": "nonsense"}', "POST")[0] == 400


def test_state_file_is_watched(standalone):
    url, state_file = standalone
    state_file.write_text(json.dumps({"ipv4": None}))
    assert fetch(f"{url}/1.0/meta-data/public-ipv4")[0] == 404
    state_file.write_text(json.dumps({"provider": "aws", "imdsv1": True}))
    os.utime(state_file, (1, 2))  # a new mtime even within the same second
    wait_for(lambda: fetch(f"{url}/latest/meta-data/local-ipv4")[0] == 200, what="provider switch")
    assert fetch(f"{url}/latest/meta-data/local-ipv4") == (200, "172.31.5.10")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_refuses_when_disabled(provider):
    with FakeIMDS(provider, mode="disabled") as fake:
        status, _ = fetch(f"{fake.url}/latest/meta-data/public-ipv4", headers={
            "Metadata-Flavor": "Google", "Metadata": "true"})  # fmt: skip
    assert status in (401, 403)


def test_aws_rules_are_enforced():
    with FakeIMDS("aws") as fake:
        assert fetch(f"{fake.url}/latest/meta-data/public-ipv4")[0] == 401  # IMDSv1 refused
        assert fetch(f"{fake.url}/latest/api/token", b"", "PUT")[0] == 400  # TTL header missing
        status, token = fetch(f"{fake.url}/latest/api/token", b"", "PUT",
                              {"X-aws-ec2-metadata-token-ttl-seconds": "60"})  # fmt: skip
        assert status == 200
        hdr = {"X-aws-ec2-metadata-token": token}
        assert fetch(f"{fake.url}/latest/meta-data/public-ipv4", headers=hdr) == (
            200,
            "3.120.45.10",
        )
        fake.set(ipv4=None)
        status, body = fetch(f"{fake.url}/latest/meta-data/public-ipv4", headers=hdr)
        assert status == 404 and "<title>404 - Not Found</title>" in body


def test_delay_answers_late_but_correctly():
    with FakeIMDS("exoscale", delay=0.3) as fake:
        status, body = fetch(f"{fake.url}/1.0/meta-data/public-ipv4")
        assert (status, body) == (200, "89.145.160.5")
        fake.set(delay=0)
        assert fetch(f"{fake.url}/1.0/meta-data/public-ipv4")[0] == 200
    assert len(fake.requests) == 2


def test_the_fake_serves_every_http_provider_of_k3snode():
    from k3snode.discovery import providers

    served = {p for p in providers.IDS if providers.load(p).BASE is not None}
    assert set(PROVIDERS) == served
