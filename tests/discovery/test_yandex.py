"""Yandex Cloud: GCE-format metadata (``Metadata-Flavor: Google``), the recursive instance
document; the one-to-one NAT address is the public IPv4, an empty accessConfigs means none."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_one_to_one_nat_address(fake_imds):
    fake = fake_imds("yandex")
    found = run_discovery(fake, "yandex")
    assert (found.provider, found.public_ipv4, found.private_ipv4) == (
        "yandex", "158.160.50.228", "10.128.0.5",
    )  # fmt: skip
    (req,) = fake.requests
    assert req.path.startswith("/computeMetadata/v1/instance/?recursive=true")
    assert req.headers["metadata-flavor"] == "Google"


def test_no_nat_address_is_none(fake_imds):
    found = run_discovery(fake_imds("yandex", ipv4=None), "yandex")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any("no public IPv4" in n for n in found.notes)


def test_private_nat_address_refused(fake_imds):
    found = run_discovery(fake_imds("yandex", ipv4="192.168.10.5"), "yandex")
    assert not_from_metadata(found, "ipv4")
    assert any("192.168.10.5 rejected: private" in n for n in found.notes)


def test_disabled_is_an_error(fake_imds):
    found = run_discovery(fake_imds("yandex", mode="disabled"), "yandex")
    assert "HTTP 403" in found.error


def test_gcp_dmi_is_not_yandex(fake_imds):
    assert run_discovery(fake_imds("gcp"), "gcp").provider == "gcp"
