"""GCP: Metadata-Flavor sent and checked; Google's HTML 404 means no external IP."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_external_ip_and_ipv6_with_the_flavor_header(fake_imds):
    fake = fake_imds("gcp")
    found = run_discovery(fake, "gcp")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "gcp", "34.77.12.34", "2600:1900:4010:ab::5",
    )  # fmt: skip
    assert found.private_ipv4 == "10.132.0.5"
    assert all(r.headers.get("metadata-flavor") == "Google" for r in fake.requests)


def test_no_access_config_is_none_not_an_error(fake_imds):
    fake = fake_imds("gcp", ipv4=None, ipv6=None)
    found = run_discovery(fake, "gcp")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert found.error is None
    assert any("no public IPv4" in n for n in found.notes)


def test_internal_ula_ipv6_is_rejected(fake_imds):
    fake = fake_imds("gcp", ipv6="fd20:b8f:5d95:2000:0:2::")
    found = run_discovery(fake, "gcp")
    assert found.public_ipv4 == "34.77.12.34"
    assert found.sources.get("ipv6") != "metadata"
    assert any("fd20:b8f:5d95:2000:0:2:: rejected: unique local" in n for n in found.notes)


def test_answer_without_the_flavor_header_is_not_trusted(fake_imds):
    fake = fake_imds("aws")  # an impostor: answers 404s, never "Metadata-Flavor: Google"
    fake.set(provider="exoscale")
    found = run_discovery(fake, "gcp")
    assert found.sources.get("ipv4") != "metadata"
    assert found.public_ipv4 != "89.145.160.5"
    assert "without Metadata-Flavor: Google" in found.error


def test_gce_maintenance_503_is_retried(fake_imds):
    fake = fake_imds("gcp", mode="flaky", fail_count=1)
    assert run_discovery(fake, "gcp").public_ipv4 == "34.77.12.34"
