"""DMI: fields read from a directory; each cloud recognised from its real-looking DMI; real
hardware, a plain KVM guest and on-prem Hyper-V recognised as no cloud."""

from __future__ import annotations

import pytest
from discovery_helpers import load_settings
from fakes import dmi_dir

from k3snode.discovery import choose_provider, dmi, providers

CLOUDS = {
    "aws": "aws", "aws-xen": "aws", "gcp": "gcp", "azure": "azure",
    "digitalocean": "digitalocean", "hetzner": "hetzner", "oracle": "oracle",
    "alibaba": "alibaba", "openstack": "openstack", "opentelekomcloud": "openstack",
    "linode": "linode", "akamai": "linode", "vultr": "vultr", "scaleway": "scaleway",
    "exoscale": "exoscale", "upcloud": "upcloud", "ibm": "ibm", "tencent": "tencent",
    "yandex": "yandex", "huawei": "huawei", "vmware": "vmware",
}  # fmt: skip


def test_fields_are_read_and_stripped():
    d = dmi.read(dmi_dir("aws"))
    assert d.get("sys_vendor") == "Amazon EC2"
    assert d.get("chassis_asset_tag") == "Amazon EC2"
    assert d.get("no_such_field") == ""


def test_missing_directory_reads_as_empty(tmp_path):
    d = dmi.read(str(tmp_path / "absent"))
    assert d.empty and d.fields == {}


@pytest.mark.parametrize("name", sorted(CLOUDS))
def test_each_cloud_recognised(name):
    assert providers.recognise(dmi.read(dmi_dir(name))) == CLOUDS[name]


@pytest.mark.parametrize("name", ["baremetal", "baremetal-dell", "kvm", "hyperv"])
def test_no_cloud_on_real_hardware_and_plain_vms(name):
    assert providers.recognise(dmi.read(dmi_dir(name))) is None


def test_every_provider_id_is_a_settings_choice():
    from k3snode.config.checks import provider

    for p in providers.IDS:
        assert provider(p) == p
        assert p == providers.load(p).ID
    with pytest.raises(ValueError):
        provider("nocloud-at-all")


def test_container_markers(tmp_path):
    marker = tmp_path / "container"
    assert not dmi.in_container((str(marker),))
    marker.write_text("docker\n")
    assert dmi.in_container((str(marker),))


def test_provider_named_in_settings_wins_over_dmi():
    ds = load_settings(provider="hetzner", dmi_dir=dmi_dir("aws")).discovery
    assert choose_provider(ds) == ("hetzner", "named in settings")


def test_provider_none_disables_metadata():
    ds = load_settings(provider="none", dmi_dir=dmi_dir("aws")).discovery
    assert choose_provider(ds)[0] is None


def test_empty_dmi_directory_is_no_cloud(tmp_path):
    ds = load_settings(dmi_dir=str(tmp_path)).discovery
    provider, how = choose_provider(ds)
    assert provider is None and "no DMI fields" in how
