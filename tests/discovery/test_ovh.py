"""OVHcloud Public Cloud: OpenStack metadata where the public IPv4 is the NIC's own address
(Nova's local-ipv4, no floating IP) and the IPv6 a static network_data.json entry."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_ext_net_addresses_when_named(fake_imds):
    fake = fake_imds("ovh")
    found = run_discovery(fake, "openstack", provider="ovh")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "ovh", "51.68.1.2", "2001:41d0:304:200::abcd",
    )  # fmt: skip
    assert found.sources == {"ipv4": "metadata", "ipv6": "metadata"}


def test_recognised_as_openstack_which_reads_it_the_same_way(fake_imds):
    fake = fake_imds("ovh")
    found = run_discovery(fake, "openstack")
    assert found.provider == "openstack"
    assert (found.public_ipv4, found.public_ipv6) == ("51.68.1.2", "2001:41d0:304:200::abcd")


def test_private_fixed_address_is_not_public(fake_imds):
    found = run_discovery(fake_imds("ovh", ipv4="10.1.2.3", ipv6=None), "openstack", provider="ovh")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert any("no public IPv4" in n for n in found.notes)
    assert any("no ipv6 network" in n for n in found.notes)


def test_disabled_is_an_error(fake_imds):
    found = run_discovery(fake_imds("ovh", mode="disabled"), "openstack", provider="ovh")
    assert found.error and found.error.startswith("ovh metadata")
