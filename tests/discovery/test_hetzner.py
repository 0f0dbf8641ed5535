"""Hetzner: YAML metadata; IPv6 from network-config with its /64 stripped."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_yaml_metadata(fake_imds):
    fake = fake_imds("hetzner")
    found = run_discovery(fake, "hetzner")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "hetzner", "5.75.1.2", "2a01:4f8:c17:1234::1",
    )  # fmt: skip
    assert found.private_ipv4 == "10.0.0.2"
    assert [r.path for r in fake.requests] == ["/hetzner/v1/metadata"]


def test_ipv4_only_server(fake_imds):
    fake = fake_imds("hetzner", ipv6=None, private_ipv4=None)
    found = run_discovery(fake, "hetzner")
    assert found.public_ipv4 == "5.75.1.2" and not_from_metadata(found, "ipv6")
    assert any("no public IPv6" in n for n in found.notes)


def test_ipv6_only_server(fake_imds):
    fake = fake_imds("hetzner", ipv4=None)
    found = run_discovery(fake, "hetzner")
    assert not_from_metadata(found, "ipv4") and found.public_ipv6 == "2a01:4f8:c17:1234::1"
    assert found.sources["ipv6"] == "metadata"
