"""Alibaba: 100.100.100.200, optional token, EIP before the fixed public IP."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery
from fakes.imds import ALIBABA_TOKEN


def test_public_ip_with_token(fake_imds):
    fake = fake_imds("alibaba")
    found = run_discovery(fake, "alibaba")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "alibaba", "47.88.1.2", "2408:4005:3ab:1200::5",
    )  # fmt: skip
    assert found.private_ipv4 == "172.16.0.5"
    gets = [r for r in fake.requests if r.method == "GET"]
    assert all(r.headers.get("x-aliyun-ecs-metadata-token") == ALIBABA_TOKEN for r in gets)


def test_eip_wins_over_the_fixed_public_ip(fake_imds):
    fake = fake_imds("alibaba", floating_ipv4="8.209.1.1")
    assert run_discovery(fake, "alibaba").public_ipv4 == "8.209.1.1"


def test_token_is_optional(fake_imds):
    fake = fake_imds("alibaba", mode="token-hang")
    found = run_discovery(fake, "alibaba")
    assert found.public_ipv4 == "47.88.1.2"
    gets = [r for r in fake.requests if r.method == "GET"]
    assert gets and all("x-aliyun-ecs-metadata-token" not in r.headers for r in gets)


def test_no_public_ip(fake_imds):
    fake = fake_imds("alibaba", ipv4=None, ipv6=None)
    found = run_discovery(fake, "alibaba")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert found.error is None


def test_default_base_url_is_alibabas_own():
    from k3snode.discovery.providers import alibaba

    assert alibaba.BASE == "http://100.100.100.200"
