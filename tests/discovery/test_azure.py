"""Azure: Metadata: true + api-version + format=text; the load-balancer endpoint when the
instance's own public address is empty (Standard SKU)."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, paths, run_discovery


def test_standard_sku_public_ip_comes_from_the_load_balancer_endpoint(fake_imds):
    fake = fake_imds("azure", ipv4="20.50.1.2")
    found = run_discovery(fake, "azure")
    assert (found.provider, found.public_ipv4, found.private_ipv4) == (
        "azure",
        "20.50.1.2",
        "10.0.0.4",
    )
    assert found.sources["ipv4"] == "metadata"
    assert any(p.startswith("/metadata/loadbalancer?api-version=") for p in paths(fake))
    assert all(r.headers.get("metadata") == "true" for r in fake.requests)
    assert all("x-forwarded-for" not in r.headers for r in fake.requests)


def test_basic_sku_public_ip_in_the_instance_document(fake_imds):
    fake = fake_imds("azure", ipv4="20.50.1.3", basic_sku=True)
    found = run_discovery(fake, "azure")
    assert found.public_ipv4 == "20.50.1.3"
    assert not any(p.startswith("/metadata/loadbalancer") for p in paths(fake))


def test_no_public_ip_anywhere_is_none(fake_imds):
    fake = fake_imds("azure", ipv4=None)
    found = run_discovery(fake, "azure")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any("no public IPv4" in n for n in found.notes)


def test_azure_is_never_recognised_from_hyperv_alone(fake_imds):
    fake = fake_imds("azure")
    found = run_discovery(fake, "hyperv")
    assert found.provider is None
    assert fake.requests == []
