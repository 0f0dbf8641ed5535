"""The metadata HTTP client against real sockets: no proxies, bounded retries, timeouts, body cap,
deadline, endpoint override."""

from __future__ import annotations

import pytest
from discovery_helpers import run_discovery
from fakes.imds import FakeIMDS
from fakes.listener import Listener
from helpers import free_port

from k3snode.discovery.errors import MetadataError, MetadataTimeout, MetadataUnreachable
from k3snode.discovery.metadata_http import BACKOFF, Client


def client(url: str, **kw) -> Client:
    import time

    kw.setdefault("deadline", time.monotonic() + 30)
    return Client("http://169.254.169.254", override=url, **kw)


def test_override_replaces_scheme_host_and_port_only():
    c = Client("http://169.254.169.254", 0, override="http://127.0.0.1:8123/")
    assert (c.scheme, c.host, c.port, c.where) == (
        "http",
        "127.0.0.1",
        8123,
        "http://127.0.0.1:8123",
    )
    c = Client("http://169.254.42.42", 0, override="http://[::1]:81")
    assert c.where == "http://[::1]:81"
    assert Client("http://169.254.42.42", 0).where == "http://169.254.42.42"


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_proxy_variables_are_ignored(fake_imds, monkeypatch, var):
    fake = fake_imds("aws")
    with Listener(("127.0.0.1", 0)) as proxy:
        monkeypatch.setenv(var, f"http://127.0.0.1:{proxy.ports[0]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        found = run_discovery(fake, "aws")
    assert found.public_ipv4 == "3.120.45.10"
    assert proxy.accepted == []


def test_connection_refused_is_retried_with_backoff_then_fails():
    pauses: list[float] = []
    c = client(f"http://127.0.0.1:{free_port()}", sleep=pauses.append, attempts=4)
    with pytest.raises(MetadataError, match="connection refused after 4 attempts"):
        c.get("/latest/meta-data/public-ipv4")
    assert pauses == [BACKOFF, BACKOFF * 2, BACKOFF * 4]
    assert c.requests == 4


def test_refused_is_not_unreachable():
    c = client(f"http://127.0.0.1:{free_port()}", sleep=lambda s: None, attempts=2)
    with pytest.raises(MetadataError) as e:
        c.get("/")
    assert not isinstance(e.value, MetadataUnreachable)


def test_404_is_an_answer_not_retried():
    with FakeIMDS("exoscale", ipv4=None) as fake:
        resp = client(fake.url).get("/1.0/meta-data/public-ipv4")
    assert resp.status == 404
    assert len(fake.requests) == 1


def test_5xx_retried_until_it_works():
    with FakeIMDS("exoscale", mode="flaky", fail_count=3) as fake:
        resp = client(fake.url, sleep=lambda s: None).get("/1.0/meta-data/public-ipv4")
    assert (resp.status, resp.text) == (200, "89.145.160.5")
    assert len(fake.requests) == 4


def test_5xx_that_persists_fails_after_the_attempts():
    fake = FakeIMDS("exoscale", mode="flaky", fail_count=100)
    with fake, pytest.raises(MetadataError, match="HTTP 503 after 3 attempts"):
        client(fake.url, sleep=lambda s: None, attempts=3).get("/1.0/meta-data/public-ipv4")
    assert len(fake.requests) == 3


def test_slow_server_is_cut_off_by_the_read_timeout():
    with FakeIMDS("exoscale", mode="slow") as fake:
        with pytest.raises(MetadataTimeout, match=r"no answer within 0\.5s"):
            client(fake.url, read_timeout=0.5).get("/1.0/meta-data/public-ipv4")
        assert len(fake.requests) == 1  # a timeout is not retried


def test_body_cap():
    fake = FakeIMDS("exoscale", mode="huge")
    with fake, pytest.raises(MetadataError, match="larger than 1024 bytes"):
        client(fake.url, max_body=1024).get("/1.0/meta-data/public-ipv4")


def test_no_request_once_the_deadline_has_passed():
    with FakeIMDS("exoscale") as fake, pytest.raises(MetadataError):
        client(fake.url, deadline=0.0).get("/1.0/meta-data/public-ipv4")
    assert fake.requests == []


def test_whole_discovery_bounded_by_the_timeout_setting(fake_imds):
    fake = fake_imds("aws", mode="token-hang")
    found = run_discovery(fake, "aws", timeout=1.0)
    assert "token request got no answer" in found.error
    assert "no answer within 1.0s" in found.error
