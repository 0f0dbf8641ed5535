"""The metadata HTTP client against real sockets: no proxies, bounded retries, timeouts, body cap,
deadline, endpoint override."""

from __future__ import annotations

import pytest
from discovery_helpers import run_discovery
from fakes.imds import FakeIMDS
from fakes.listener import Listener
from helpers import free_port

from k3snode.discovery.errors import MetadataError, MetadataTimeout, MetadataUnreachable
from k3snode.discovery.http import BACKOFF, Client


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


def test_azure_410_is_retried_until_it_answers(fake_imds):
    fake = fake_imds("azure", ipv4="20.50.1.2", gone_count=5)
    found = run_discovery(fake, "azure")
    assert found.public_ipv4 == "20.50.1.2" and found.error is None
    assert len(fake.requests) > 5  # more than the 4 attempts other failures get


def test_410_is_an_answer_where_the_provider_did_not_ask_for_patience():
    import time

    with FakeIMDS("azure", gone_count=100) as fake:
        c = client(fake.url, sleep=lambda s: None)
        resp = c.get("/metadata/loadbalancer?api-version=2020-10-01", {"Metadata": "true"})
        assert resp.status == 410 and c.requests == 1
        now = [time.monotonic()]  # a test clock that moves only when the client sleeps
        patient = client(fake.url, deadline=now[0] + 4, patient=frozenset({410}),
                         clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))  # fmt: skip
        with pytest.raises(MetadataError, match="HTTP 410"):
            patient.get("/metadata/loadbalancer?api-version=2020-10-01", {"Metadata": "true"})
        assert patient.requests > 4  # until the deadline, not 4 attempts


def test_retry_after_is_honoured_within_the_deadline():
    pauses: list[float] = []
    with FakeIMDS("exoscale", mode="flaky", fail_count=2, retry_after=2) as fake:
        c = client(fake.url, sleep=pauses.append)
        assert c.get("/1.0/meta-data/public-ipv4").status == 200
    assert pauses == [2.0, 2.0]


def test_request_body_is_sent_with_its_length(fake_imds):
    fake = fake_imds("ibm")
    c = client(fake.url)
    resp = c.request(
        "PUT", "/instance_identity/v1/token?version=2022-03-01", {"Metadata-Flavor": "ibm"},
        body=b'{"expires_in": 300}',
    )  # fmt: skip
    assert resp.status == 200
    assert fake.requests[0].headers["content-length"] == "19"


def test_a_host_name_is_resolved(fake_imds):
    fake = fake_imds("exoscale")
    c = client(f"http://localhost:{fake.port}")
    assert c.get("/1.0/meta-data/public-ipv4").text == "89.145.160.5"


def test_an_unresolvable_host_name_is_an_error_not_a_traceback():
    import time

    c = client("http://no-such-host.invalid:80", deadline=time.monotonic() + 5, sleep=lambda s: 0)
    with pytest.raises(MetadataError, match=r"(cannot resolve|resolving) no-such-host\.invalid"):
        c.get("/")


def test_race_takes_the_first_base_that_connects():
    import time

    from k3snode.discovery.http import race

    with FakeIMDS("aws") as fake:
        dead = f"http://127.0.0.1:{free_port()}"  # refused at once: the next one starts at once
        winner, lost = race([dead, fake.url], time.monotonic() + 5, stagger=30)
        assert winner == 1
        assert lost == [f"{dead}: connection refused"]
        winner, lost = race([fake.url, dead], time.monotonic() + 5)
        assert (winner, lost) == (0, [])
    assert fake.requests == []  # the race connects, it sends nothing


def test_race_with_nothing_listening_gives_no_winner():
    import time

    from k3snode.discovery.http import race

    bases = [f"http://127.0.0.1:{free_port()}", f"http://[::1]:{free_port('::1')}"]
    winner, lost = race(bases, time.monotonic() + 5)
    assert winner is None and len(lost) == 2
