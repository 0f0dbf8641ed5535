"""Scaleway: 169.254.42.42, /conf?format=json."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, paths, run_discovery


def test_conf_json(fake_imds):
    fake = fake_imds("scaleway")
    found = run_discovery(fake, "scaleway")
    assert (found.provider, found.public_ipv4, found.public_ipv6) == (
        "scaleway", "51.15.1.2", "2001:bc8:1640:1234::1",
    )  # fmt: skip
    assert paths(fake) == ["/conf?format=json"]


def test_null_public_ip_is_none(fake_imds):
    found = run_discovery(fake_imds("scaleway", ipv4=None, ipv6=None), "scaleway")
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")
    assert found.error is None


def test_default_base_url():
    from k3snode.discovery.providers import scaleway

    assert scaleway.BASE == "http://169.254.42.42"
