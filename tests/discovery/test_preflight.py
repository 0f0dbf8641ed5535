"""``k3snode check`` says, without any network, which metadata service discovery would ask."""

from __future__ import annotations

import json

from fakes import dmi_dir
from helpers import run_k3snode


def check(*args: str) -> list[dict]:
    r = run_k3snode("check", "--json", "--config", "/dev/null", *args)
    assert r.returncode in (0, 1), r.stderr
    return [f for f in json.loads(r.stdout) if f["topic"] == "discovery"]


def test_recognised_cloud_and_its_endpoint():
    found = check("--dmi-dir", dmi_dir("scaleway"))
    assert found[0]["level"] == "ok"
    assert (
        "metadata of scaleway at http://169.254.42.42 (recognised from DMI" in found[0]["message"]
    )


def test_bare_metal_asks_no_metadata_service():
    found = check("--dmi-dir", dmi_dir("baremetal"))
    assert "no metadata service: DMI matches no cloud" in found[0]["message"]


def test_provider_that_contradicts_dmi_is_a_warning():
    found = check("--dmi-dir", dmi_dir("aws"), "--provider", "gcp")
    assert any(f["level"] == "warning" and "DMI says 'aws'" in f["message"] for f in found)


def test_echo_is_flagged():
    found = check("--dmi-dir", dmi_dir("baremetal"), "--echo")
    assert any(f["level"] == "warning" and "echo = true" in f["message"] for f in found)


def test_vmware_names_guestinfo_not_an_address():
    found = check("--dmi-dir", dmi_dir("vmware"))
    assert (
        "metadata of vmware at guestinfo (vmware-rpctool) (recognised from DMI"
        in (found[0]["message"])
    )


def test_new_clouds_and_their_endpoints():
    assert (
        "metadata of tencent at http://169.254.0.23"
        in check("--dmi-dir", dmi_dir("tencent"))[0]["message"]
    )
    assert (
        "metadata of huawei at http://169.254.169.254"
        in check("--dmi-dir", dmi_dir("huawei"))[0]["message"]
    )
