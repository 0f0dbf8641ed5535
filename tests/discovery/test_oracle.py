"""Oracle: IPv6 from the VNIC (Bearer Oracle); the public IPv4 is never in OCI metadata, so it is
left to the fallbacks (see test_discovery_netns.py for the interface filling it)."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_ipv6_from_vnic_and_ipv4_left_open(fake_imds):
    fake = fake_imds("oracle")
    found = run_discovery(fake, "oracle")
    assert found.provider == "oracle"
    assert found.public_ipv6 == "2603:c020:4010:ab00::10"
    assert found.sources["ipv6"] == "metadata"
    assert found.sources.get("ipv4") != "metadata"
    assert found.private_ipv4 == "10.0.0.5"
    assert any("public IPv4 is not published" in n for n in found.notes)
    assert all(r.headers.get("authorization") == "Bearer Oracle" for r in fake.requests)


def test_no_ipv6_on_the_vnic(fake_imds):
    fake = fake_imds("oracle", ipv6=None)
    found = run_discovery(fake, "oracle")
    assert not_from_metadata(found, "ipv6")
    assert any("no public IPv6" in n for n in found.notes)
