"""Linode/Akamai: token PUT, then /v1/network with CIDR values; empty lists mean none."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery
from fakes.imds import LINODE_TOKEN


def test_cidr_values_stripped(fake_imds):
    fake = fake_imds("linode")
    found = run_discovery(fake, "linode")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "linode", "172.233.211.141", "2600:3c06::f03c:94ff:fe12:3456",
    )  # fmt: skip
    assert found.private_ipv4 == "192.168.130.2"
    put, get = fake.requests
    assert (put.method, put.path) == ("PUT", "/v1/token")
    assert put.headers["metadata-token-expiry-seconds"].isdigit()
    assert get.headers["metadata-token"] == LINODE_TOKEN


def test_akamai_branding_recognised(fake_imds):
    assert run_discovery(fake_imds("linode"), "akamai").provider == "linode"


def test_empty_lists_are_none(fake_imds):
    fake = fake_imds("linode", ipv4=None, ipv6=None)
    found = run_discovery(fake, "linode")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert found.error is None
    assert any("ipv4.public empty" in n for n in found.notes)
