"""Tencent Cloud CVM: EC2-style text leaves at 169.254.0.23; a 404 means no public IPv4; no IPv6
leaf is documented, so IPv6 is left to the fallbacks."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, paths, run_discovery


def test_public_and_private_ipv4(fake_imds):
    fake = fake_imds("tencent")
    found = run_discovery(fake, "tencent")
    assert (found.provider, found.public_ipv4, found.private_ipv4) == (
        "tencent", "43.135.1.2", "10.104.13.59",
    )  # fmt: skip
    assert found.sources["ipv4"] == "metadata"
    assert paths(fake) == ["/latest/meta-data/public-ipv4", "/latest/meta-data/local-ipv4"]
    assert any("public IPv6 is not published" in n for n in found.notes)


def test_404_is_none_and_no_error(fake_imds):
    found = run_discovery(fake_imds("tencent", ipv4=None), "tencent")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any("no public IPv4 (public-ipv4: 404)" in n for n in found.notes)


def test_private_address_in_the_public_leaf_is_refused(fake_imds):
    found = run_discovery(fake_imds("tencent", ipv4="10.104.13.60"), "tencent")
    assert not_from_metadata(found, "ipv4")
    assert any("10.104.13.60 rejected: private" in n for n in found.notes)


def test_disabled_and_html_answers(fake_imds):
    found = run_discovery(fake_imds("tencent", mode="disabled"), "tencent")
    assert "HTTP 403" in found.error
    found = run_discovery(fake_imds("tencent", mode="html"), "tencent")
    assert not_from_metadata(found, "ipv4")
    assert any("rejected" in n for n in found.notes)


def test_the_service_is_its_own_address():
    from k3snode.discovery.providers import tencent

    assert tencent.BASE == "http://169.254.0.23"  # not the name metadata.tencentyun.com
