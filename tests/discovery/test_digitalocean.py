"""DigitalOcean: v1.json; upper-case uncompressed IPv6 normalised; the reserved IP is never taken."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_addresses_normalised(fake_imds):
    fake = fake_imds("digitalocean", floating_ipv4="167.99.1.1")
    found = run_discovery(fake, "digitalocean")
    assert found.provider == "digitalocean"
    assert found.public_ipv4 == "164.90.1.2"
    assert found.public_ipv6 == "2a03:b0c0:3:d0::1234:5001"
    assert found.private_ipv4 == "10.114.0.2"
    assert "167.99.1.1" not in (found.public_ipv4, found.public_ipv6)


def test_missing_ipv6_is_none(fake_imds):
    fake = fake_imds("digitalocean", ipv6=None)
    found = run_discovery(fake, "digitalocean")
    assert not_from_metadata(found, "ipv6")
    assert any("no public IPv6" in n for n in found.notes)


def test_html_instead_of_json_is_an_error_not_an_address(fake_imds):
    fake = fake_imds("digitalocean", mode="html")
    found = run_discovery(fake, "digitalocean")
    assert "not JSON" in found.error
    assert found.sources.get("ipv4") != "metadata"
