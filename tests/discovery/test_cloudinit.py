"""cloud-init's own answer as a hint: the recorded instance-data.json (cloud-init's documented EC2
example) and cloud-id read from a directory; bounded (size, depth); used to pick the provider
without DMI; Huawei refined from DMI."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from discovery_helpers import load_settings
from fakes import dmi_dir
from helpers import REPO

from k3snode.discovery import choose_provider, cloudinit

RECORDED = os.path.join(REPO, "tests", "fakes", "cloud-init", "instance-data-aws.json")


def run_dir(tmp_path, data=None, cloud_id=None):
    if data is not None:
        text = data if isinstance(data, str) else json.dumps(data)
        (tmp_path / "instance-data.json").write_text(text)
    if cloud_id is not None:
        (tmp_path / f"cloud-id-{cloud_id}").write_text(f"{cloud_id}\n")
        os.symlink(f"cloud-id-{cloud_id}", tmp_path / "cloud-id")
    return str(tmp_path)


def test_recorded_ec2_instance_data(tmp_path):
    shutil.copy(RECORDED, tmp_path / "instance-data.json")
    hint, note = cloudinit.read(str(tmp_path))
    assert note == ""
    assert (hint.cloud, hint.provider) == ("aws", "aws")
    assert hint.ipv4 == "3.89.187.177" and hint.ipv6 is None
    assert hint.source.endswith("instance-data.json")


def test_cloud_id_cache_alone(tmp_path):
    hint, _ = cloudinit.read(run_dir(tmp_path, cloud_id="gce"))
    assert (hint.cloud, hint.provider, hint.ipv4) == ("gce", "gcp", None)


def test_region_variants_and_names_k3snode_has_no_provider_for(tmp_path):
    d = tmp_path / "a"
    d.mkdir()
    hint, _ = cloudinit.read(run_dir(d, {"v1": {"cloud_id": "aws-china", "cloud_name": "aws"}}))
    assert hint.provider == "aws"
    d = tmp_path / "b"
    d.mkdir()
    hint, _ = cloudinit.read(run_dir(d, {"v1": {"cloud_name": "nocloud", "platform": "nocloud"}}))
    assert hint.cloud == "nocloud" and hint.provider is None


def test_no_cloud_init_is_silence(tmp_path):
    assert cloudinit.read(str(tmp_path / "absent")) == (None, "")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{" * 40 + "}" * 40, "nested deeper"),
        ('{"v1": ' * 200 + "1" + "}" * 200, "nested deeper"),
        ("not json at all", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        ('{"v2": {}}', "no v1 section"),
        ('{"v1": {"cloud_name": 7, "platform": "unknown"}}', "names no cloud"),
    ],
)
def test_bad_files_are_not_used_and_never_raise(tmp_path, content, why):
    path = tmp_path / "instance-data.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    hint, note = cloudinit.read(str(tmp_path))
    assert hint is None and why in note


def test_an_oversized_file_is_not_read_whole(tmp_path):
    big = {"v1": {"cloud_name": "aws"}, "pad": "x" * (cloudinit.MAX_BYTES + 10)}
    hint, note = cloudinit.read(run_dir(tmp_path, big))
    assert hint is None and "larger than" in note


def test_strings_with_brackets_do_not_count_as_nesting(tmp_path):
    data = {"v1": {"cloud_name": "aws"}, "ds": {"meta_data": {"x": "{[" * 100}}}
    hint, _ = cloudinit.read(run_dir(tmp_path, data))
    assert hint is not None and hint.provider == "aws"


def test_the_hint_picks_the_provider_without_dmi():
    ds = load_settings(dmi_dir=dmi_dir("baremetal")).discovery
    hint = cloudinit.Hint("aws", "aws", "/run/cloud-init/instance-data.json")
    provider, how = choose_provider(ds, hint=hint)
    assert provider == "aws" and how.startswith("named by cloud-init (aws")


def test_openstack_hint_is_refined_to_huawei_by_dmi():
    hint = cloudinit.Hint("openstack", "openstack", "/run/cloud-init/instance-data.json")
    ds = load_settings(dmi_dir=dmi_dir("huawei")).discovery
    assert choose_provider(ds, hint=hint)[0] == "huawei"
    ds = load_settings(dmi_dir=dmi_dir("openstack")).discovery
    assert choose_provider(ds, hint=hint)[0] == "openstack"


def test_settings_still_win_over_the_hint():
    hint = cloudinit.Hint("aws", "aws", "x")
    ds = load_settings(provider="none", dmi_dir=dmi_dir("aws")).discovery
    assert choose_provider(ds, hint=hint)[0] is None
    ds = load_settings(provider="gcp", dmi_dir=dmi_dir("aws")).discovery
    assert choose_provider(ds, hint=hint)[0] == "gcp"


def test_an_explicit_dmi_dir_is_not_mixed_with_this_machines_cloud_init():
    ds = load_settings(dmi_dir=dmi_dir("kvm")).discovery
    assert choose_provider(ds) == (None, "DMI matches no cloud: metadata not asked")


def test_a_v1_only_file_names_the_cloud_without_addresses(tmp_path):
    # the shape of the project's cloud-init recipe (shared/recipes/cloud-init/instance-data.json)
    data = {"v1": {"local_hostname": "node-a", "cloud_name": "aws", "region": "eu-west-1",
                   "instance_id": "i-123", "platform": "ec2"}}  # fmt: skip
    hint, note = cloudinit.read(run_dir(tmp_path, data))
    assert note == "" and (hint.provider, hint.ipv4, hint.ipv6) == ("aws", None, None)


def test_each_cloud_init_name_belongs_to_one_provider():
    from k3snode.discovery import providers

    names = [n for p in providers.IDS for n in getattr(providers.load(p), "CLOUD_INIT", ())]
    assert len(names) == len(set(names))
    assert providers.from_cloud_init("gce") == "gcp"
    assert providers.from_cloud_init("aliyun") == "alibaba"
    assert providers.from_cloud_init("ibmcloud") is None  # IBM Classic: left to DMI
