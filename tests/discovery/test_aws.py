"""AWS: IMDSv2 against a real fake server — token first, then GETs carrying it; every failure mode
ends in a clear answer or a clear error, never in a hang."""

from __future__ import annotations

from discovery_helpers import load_settings, not_from_metadata, paths, run_discovery
from fakes import dmi_dir
from fakes.imds import AWS_TOKEN
from fakes.listener import Listener

from k3snode.discovery import Session, discover


def test_imdsv2_gives_both_families_and_the_private_address(fake_imds):
    fake = fake_imds("aws", ipv4="3.120.45.10", ipv6="2A05:D014:0ABC:0D00:0000:0000:0000:0010")
    found = run_discovery(fake, "aws")
    assert found.provider == "aws"
    assert (found.public_ipv4, found.public_ipv6) == ("3.120.45.10", "2a05:d014:abc:d00::10")
    assert found.sources == {"ipv4": "metadata", "ipv6": "metadata"}
    assert found.private_ipv4 == "172.31.5.10"
    assert found.error is None
    reqs = fake.requests
    assert (reqs[0].method, reqs[0].path) == ("PUT", "/latest/api/token")
    assert reqs[0].headers["x-aws-ec2-metadata-token-ttl-seconds"].isdigit()
    assert all(r.headers.get("x-aws-ec2-metadata-token") == AWS_TOKEN for r in reqs[1:])


def test_404_means_no_public_address_and_then_no_echo(fake_imds):
    fake = fake_imds("aws", ipv4=None, ipv6=None)
    with Listener(("127.0.0.1", 0), ("127.0.0.1", 0)) as echo:
        services = ",".join(f"https://127.0.0.1:{p}" for p in echo.ports)
        found = run_discovery(fake, "aws", echo=True, echo_services=services)
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert found.error is None
    assert any("no public IPv4" in n and "404" in n for n in found.notes)
    assert any("echo services not asked" in n for n in found.notes)
    assert echo.accepted == []


def test_token_request_that_never_answers_names_the_hop_limit(fake_imds):
    fake = fake_imds("aws", mode="token-hang")
    found = run_discovery(fake, "aws")
    assert not_from_metadata(found, "ipv4")
    assert "hop limit" in found.error and "--http-put-response-hop-limit 2" in found.error
    assert "GET answers (HTTP 401)" in found.error
    # no silent IMDSv1 fallback: no GET of an address leaf was sent
    assert "/latest/meta-data/public-ipv4" not in paths(fake)


def test_imdsv1_only_when_allowed(fake_imds):
    fake = fake_imds("aws", mode="token-hang", imdsv1=True)
    found = run_discovery(fake, "aws", allow_imdsv1=True)
    assert found.public_ipv4 == "3.120.45.10"
    leaf = [r for r in fake.requests if r.path == "/latest/meta-data/public-ipv4"]
    assert leaf and "x-aws-ec2-metadata-token" not in leaf[0].headers


def test_imdsv1_refused_with_401_is_an_error(fake_imds):
    fake = fake_imds("aws", mode="token-hang", imdsv1=False)
    found = run_discovery(fake, "aws", allow_imdsv1=True)
    assert not_from_metadata(found, "ipv4")
    assert "IMDSv1 refused (401)" in found.error


def test_disabled_endpoint_403_stops_at_once(fake_imds):
    fake = fake_imds("aws", mode="disabled")
    found = run_discovery(fake, "aws")
    assert "disabled" in found.error
    assert paths(fake) == ["/latest/api/token"]  # no retries, no further requests


def test_transient_5xx_is_retried(fake_imds):
    fake = fake_imds("aws", mode="flaky", fail_count=2)
    found = run_discovery(fake, "aws")
    assert found.public_ipv4 == "3.120.45.10" and found.error is None
    assert paths(fake)[:3] == ["/latest/api/token"] * 3  # 503, 503, then the token


def test_html_where_an_address_was_expected_is_rejected(fake_imds):
    fake = fake_imds("aws", mode="html")
    found = run_discovery(fake, "aws")
    assert found.sources.get("ipv4") != "metadata"
    assert found.public_ipv4 != "3.120.45.10"
    assert any("public-ipv4" in n and "rejected: not an IP address" in n for n in found.notes)


def test_private_address_in_the_public_field_is_rejected(fake_imds):
    fake = fake_imds("aws", ipv4="172.31.5.10", ipv6=None)
    found = run_discovery(fake, "aws")
    assert found.sources.get("ipv4") != "metadata"
    assert any("172.31.5.10 rejected: private (RFC 1918)" in n for n in found.notes)


def test_huge_body_is_cut_off(fake_imds):
    fake = fake_imds("aws", mode="huge")
    found = run_discovery(fake, "aws")
    assert found.sources.get("ipv4") != "metadata"
    assert "larger than" in found.error


def test_one_byte_a_second_server_times_out(fake_imds):
    fake = fake_imds("aws", mode="slow")
    found = run_discovery(fake, "aws")
    assert found.sources.get("ipv4") != "metadata"
    assert "no answer within" in found.error


def test_answer_changed_at_runtime_is_seen_by_the_next_discovery(fake_imds):
    fake = fake_imds("aws")
    assert run_discovery(fake, "aws").public_ipv4 == "3.120.45.10"
    fake.set(ipv4="3.120.45.11")
    assert run_discovery(fake, "aws").public_ipv4 == "3.120.45.11"


def test_xen_generation_recognised_by_uuid(fake_imds):
    fake = fake_imds("aws")
    assert run_discovery(fake, "aws-xen").provider == "aws"


def test_a_session_keeps_the_token_so_a_poll_is_two_gets(fake_imds):
    fake = fake_imds("aws", ipv4="3.120.45.10")
    settings = load_settings(dmi_dir=dmi_dir("aws"), metadata_endpoint=fake.url)
    session = Session()
    first = discover(settings, session=session)
    assert first.public_ipv4 == "3.120.45.10" and first.error is None
    assert first.private_ipv4 is None  # informational: not asked by a session (the daemon)
    assert paths(fake) == ["/latest/api/token", "/latest/meta-data/public-ipv4",
                           "/latest/meta-data/ipv6"]  # fmt: skip
    assert int(fake.requests[0].headers["x-aws-ec2-metadata-token-ttl-seconds"]) == 21600
    fake.clear_requests()
    fake.set(ipv4="3.120.45.11")
    second = discover(settings, session=session)
    assert second.public_ipv4 == "3.120.45.11"
    assert paths(fake) == ["/latest/meta-data/public-ipv4", "/latest/meta-data/ipv6"]
    assert all(r.headers.get("x-aws-ec2-metadata-token") == AWS_TOKEN for r in fake.requests)


def test_a_kept_token_that_is_refused_is_replaced_once(fake_imds):
    fake = fake_imds("aws", ipv4="3.120.45.10")
    settings = load_settings(dmi_dir=dmi_dir("aws"), metadata_endpoint=fake.url)
    session = Session()
    discover(settings, session=session)
    (key,) = session.memo
    session.memo[key] = ("revoked-token", session.memo[key][1])  # the instance was restarted
    fake.clear_requests()
    found = discover(settings, session=session)
    assert found.public_ipv4 == "3.120.45.10" and found.error is None
    assert paths(fake) == ["/latest/meta-data/public-ipv4", "/latest/api/token",
                           "/latest/meta-data/public-ipv4", "/latest/meta-data/ipv6"]  # fmt: skip
    assert session.memo[key][0] == AWS_TOKEN
