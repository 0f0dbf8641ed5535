"""Exoscale: CloudStack-style leaves on port 80; the password server on 8080 is never touched."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_public_ipv4_and_ipv6_left_to_fallbacks(fake_imds):
    fake = fake_imds("exoscale")
    found = run_discovery(fake, "exoscale")
    assert (found.provider, found.public_ipv4) == ("exoscale", "89.145.160.5")
    assert found.sources.get("ipv6") != "metadata"
    assert all(r.path.startswith("/1.0/meta-data/") for r in fake.requests)


def test_no_public_ipv4(fake_imds):
    found = run_discovery(fake_imds("exoscale", ipv4=None), "exoscale")
    assert not_from_metadata(found, "ipv4") and found.error is None


def test_never_port_8080():
    from k3snode.discovery.http import Client
    from k3snode.discovery.providers import exoscale

    assert Client(exoscale.BASE, 0).port == 80
