"""Vultr: v1.json, the public interface; zero-padded IPv6 normalised."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_public_interface(fake_imds):
    fake = fake_imds("vultr")
    found = run_discovery(fake, "vultr")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "vultr", "45.76.1.2", "2001:19f0:5:28a7:5400:3ff:fe1b:4eca",
    )  # fmt: skip
    assert found.private_ipv4 == "10.1.96.3"


def test_no_ipv6(fake_imds):
    found = run_discovery(fake_imds("vultr", ipv6=None), "vultr")
    assert not_from_metadata(found, "ipv6") and found.public_ipv4 == "45.76.1.2"
