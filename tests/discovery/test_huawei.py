"""Huawei Cloud: OpenStack metadata, told from other OpenStack clouds by the HUAWEICLOUD asset
tag; ``public-ipv4`` is the EIP."""

from __future__ import annotations

from discovery_helpers import not_from_metadata, run_discovery


def test_eip(fake_imds):
    fake = fake_imds("huawei")
    found = run_discovery(fake, "huawei")
    assert (found.provider, found.public_ipv4, found.private_ipv4) == (
        "huawei", "119.8.1.2", "192.168.0.5",
    )  # fmt: skip
    assert found.sources["ipv4"] == "metadata"


def test_no_eip_is_none(fake_imds):
    found = run_discovery(fake_imds("huawei", ipv4=None), "huawei")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any(n.startswith("huawei metadata: no public IPv4") for n in found.notes)


def test_private_eip_refused_and_disabled_is_an_error(fake_imds):
    found = run_discovery(fake_imds("huawei", ipv4="100.64.3.4"), "huawei")
    assert not_from_metadata(found, "ipv4")
    assert any("100.64.3.4 rejected" in n for n in found.notes)
    found = run_discovery(fake_imds("huawei", mode="disabled"), "huawei")
    assert found.error and "huawei metadata" in found.error


def test_other_openstack_clouds_stay_openstack(fake_imds):
    fake = fake_imds("openstack")
    assert run_discovery(fake, "openstack").provider == "openstack"
    assert run_discovery(fake, "opentelekomcloud").provider == "openstack"
