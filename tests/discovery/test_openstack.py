"""OpenStack: EC2-compatible paths; an empty 200 for public-ipv4 means no floating IP."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_floating_ip(fake_imds):
    fake = fake_imds("openstack", ipv6="2001:41d0:304:200::abcd")
    found = run_discovery(fake, "openstack")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "openstack", "185.41.1.2", "2001:41d0:304:200::abcd",
    )  # fmt: skip
    assert found.private_ipv4 == "10.0.0.7"


def test_empty_200_means_no_floating_ip(fake_imds):
    fake = fake_imds("openstack", ipv4=None)
    found = run_discovery(fake, "openstack")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any("no public IPv4 (public-ipv4: empty)" in n for n in found.notes)


def test_provider_network_fixed_address_is_public(fake_imds):
    fake = fake_imds("openstack", ipv4=None, private_ipv4="185.41.7.9")
    found = run_discovery(fake, "opentelekomcloud")
    assert found.provider == "openstack"
    assert found.public_ipv4 == "185.41.7.9" and found.sources["ipv4"] == "metadata"


def test_ula_fixed_ipv6_is_not_public(fake_imds):
    fake = fake_imds("openstack", ipv6="fdb8:1234::5")
    found = run_discovery(fake, "openstack")
    assert found.sources.get("ipv6") != "metadata"
    assert any("fdb8:1234::5 rejected: unique local" in n for n in found.notes)
