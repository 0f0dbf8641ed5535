"""VMware guests: guestinfo read with ``vmware-rpctool`` (a stub that answers as open-vm-tools'
rpctool does, on PATH), never the network; without the tool, both families go to the fallbacks."""

from __future__ import annotations

import base64
import gzip
import json
import os

import pytest
from discovery_helpers import not_from_metadata, run_discovery
from helpers import REPO

STUBS = os.path.join(REPO, "tests", "stubs")
# cloud-init network config v2, as in cloud-init's VMware datasource docs (guestinfo.metadata)
NETPLAN = """instance-id: node-1
local-hostname: node-1
network:
  version: 2
  ethernets:
    ens192:
      addresses: [185.199.108.20/24, "2a02:c207:2030:1234::20/64"]
      gateway4: 185.199.108.1
"""


@pytest.fixture
def guestinfo(tmp_path, monkeypatch):
    """``guestinfo(**keys)``: the VMX's guestinfo keys for the stub; returns the call log."""
    log = tmp_path / "rpctool.log"
    monkeypatch.setenv("PATH", f"{STUBS}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GUESTINFO_LOG", str(log))

    def set_keys(**keys):
        state = tmp_path / "guestinfo.json"
        state.write_text(json.dumps({k.replace("_", "."): v for k, v in keys.items()}))
        monkeypatch.setenv("FAKE_GUESTINFO", str(state))
        return log

    return set_keys


def calls(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_deployer_given_addresses(guestinfo, fake_imds):
    log = guestinfo(**{"k3snode.external-ips": "185.199.108.20,2a02:c207:2030:1234::20"})
    fake = fake_imds("aws")  # any HTTP service: it must not be asked
    found = run_discovery(fake, "vmware")
    assert found.provider == "vmware" and found.error is None
    assert (found.public_ipv4, found.public_ipv6) == ("185.199.108.20", "2a02:c207:2030:1234::20")
    assert found.sources == {"ipv4": "metadata", "ipv6": "metadata"}
    assert calls(log) == ["info-get guestinfo.k3snode.external-ips"]
    assert fake.requests == []


@pytest.mark.parametrize("encoding", ["", "base64", "gzip+base64"])
def test_static_addresses_of_cloud_init_metadata(guestinfo, encoding):
    raw = NETPLAN.encode()
    if encoding == "gzip+base64":
        raw = base64.b64encode(gzip.compress(raw))
    elif encoding == "base64":
        raw = base64.b64encode(raw)
    keys = {"metadata": raw.decode()}
    if encoding:
        keys["metadata.encoding"] = encoding
    log = guestinfo(**keys)
    found = run_discovery(None, "vmware")
    assert (found.public_ipv4, found.public_ipv6) == ("185.199.108.20", "2a02:c207:2030:1234::20")
    assert "info-get guestinfo.metadata" in calls(log)


def test_private_addresses_in_metadata_are_refused(guestinfo):
    guestinfo(metadata=json.dumps({"network": {"version": 1, "config": [
        {"type": "physical", "name": "ens192", "subnets": [
            {"type": "static", "address": "192.168.1.20/24"}]}]}}))  # fmt: skip
    found = run_discovery(None, "vmware")
    assert not_from_metadata(found, "ipv4") and found.error is None
    assert any("192.168.1.20 rejected: private" in n for n in found.notes)


def test_unset_keys_are_no_answer_not_an_error(guestinfo):
    guestinfo()
    found = run_discovery(None, "vmware")
    assert found.provider == "vmware" and found.error is None
    assert not_from_metadata(found, "ipv4") and not_from_metadata(found, "ipv6")


def test_outside_vmware_the_tool_fails_and_says_so(guestinfo, monkeypatch):
    guestinfo()
    monkeypatch.delenv("FAKE_GUESTINFO")  # the stub now answers as rpctool does outside VMware
    found = run_discovery(None, "vmware")
    assert "Failed sending message to VMware." in (found.error or "")


def test_garbage_metadata(guestinfo):
    guestinfo(metadata="{not: [json", **{"metadata.encoding": "base64"})
    found = run_discovery(None, "vmware")
    assert "vmware metadata" in found.error and "metadata" not in found.sources.values()


def test_packed_metadata_is_bounded_while_it_unpacks(guestinfo):
    """A gzip bomb (4 MiB of zeros in a few KiB) is refused, and so is a cut-off gzip stream."""
    bomb = base64.b64encode(gzip.compress(b"0" * (4 << 20))).decode()
    guestinfo(metadata=bomb, **{"metadata.encoding": "gzip+base64"})
    found = run_discovery(None, "vmware")
    assert "larger than 262144 bytes unpacked" in (found.error or "")
    cut = base64.b64encode(gzip.compress(NETPLAN.encode())[:-12]).decode()
    guestinfo(metadata=cut, **{"metadata.encoding": "gz+b64"})
    found = run_discovery(None, "vmware")
    assert "not valid gz+b64" in (found.error or "")
    assert found.public_ipv4 != "185.199.108.20"


def test_a_hanging_tool_is_cut_off(guestinfo):
    guestinfo(stub_hang=True)
    found = run_discovery(None, "vmware", timeout=1.0)
    assert "no answer within" in found.error


def test_without_vmware_tools_nothing_is_read(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vmware-rpctool anywhere
    found = run_discovery(None, "vmware")
    assert found.provider == "vmware" and found.error is None
    assert any("vmware-rpctool not installed" in n for n in found.notes)


def test_the_stub_answers_as_the_real_tool(guestinfo):
    import subprocess

    guestinfo(metadata="x")
    tool = os.path.join(STUBS, "vmware-rpctool")
    ok = subprocess.run([tool, "info-get guestinfo.metadata"], capture_output=True, text=True)
    unset = subprocess.run([tool, "info-get guestinfo.userdata"], capture_output=True, text=True)
    usage = subprocess.run([tool], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "x\n", "")
    assert (unset.returncode, unset.stdout, unset.stderr) == (1, "", "No value found\n")
    assert usage.returncode == 1 and usage.stderr.startswith("rpctool syntax:")
