"""Where k3snode starts wireguard-go: as its own systemd unit when k3snode runs as a service
(so wireguard-go outlives k3snode's stops and restarts), else directly. The end-to-end proof is
tests/system/test_underlay_unit.py; these are the decision and the failure messages."""

from __future__ import annotations

import logging

import pytest

from k3snode.mesh.wg.link import UNIT_TEMPLATE, start_userspace, userspace_unit
from k3snode.mesh.wg.types import WireGuardError


@pytest.fixture
def host(tmp_path):
    """A booted-systemd marker directory and a unit directory holding the template."""
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    units = tmp_path / "lib-systemd-system"
    units.mkdir()
    (units / UNIT_TEMPLATE).write_text("[Service]\nExecStart=/usr/bin/wireguard-go -f %i\n")
    return str(booted), (str(tmp_path / "etc-empty"), str(units))


def test_a_service_on_a_systemd_host_gets_the_unit(host):
    booted, dirs = host
    unit = userspace_unit("k3snode-ul", {"INVOCATION_ID": "abc"}, booted, dirs)
    assert unit == "k3snode-wireguard-go@k3snode-ul.service"


def test_run_by_hand_starts_it_directly(host):
    booted, dirs = host
    assert userspace_unit("k3snode-ul", {}, booted, dirs) is None
    assert userspace_unit("k3snode-ul", {"INVOCATION_ID": ""}, booted, dirs) is None


def test_no_systemd_starts_it_directly(host, tmp_path):
    _, dirs = host
    gone = str(tmp_path / "no-such-dir")
    assert userspace_unit("k3snode-ul", {"INVOCATION_ID": "abc"}, gone, dirs) is None


def test_without_the_template_it_starts_directly_and_says_why(host, tmp_path, caplog):
    booted, _ = host
    caplog.set_level(logging.WARNING)
    empty = (str(tmp_path / "none"),)
    assert userspace_unit("ul0", {"INVOCATION_ID": "abc"}, booted, empty) is None
    assert UNIT_TEMPLATE in caplog.text and "ul0" in caplog.text and "cgroup" in caplog.text


def test_every_valid_interface_name_is_a_valid_instance(host):
    """Settings allow [A-Za-z0-9_.-]; all are legal in unit names and %i passes them raw."""
    booted, dirs = host
    unit = userspace_unit("w_g.0-a", {"INVOCATION_ID": "x"}, booted, dirs)
    assert unit == "k3snode-wireguard-go@w_g.0-a.service"


def test_systemctl_failure_is_one_line_naming_the_unit(tmp_path):
    with pytest.raises(WireGuardError) as e:
        start_userspace("ul0", socket_dir=str(tmp_path), unit="x@ul0.service", systemctl="false")
    assert str(e.value) == "systemctl start x@ul0.service failed: 1"


def test_missing_systemctl_is_an_error_not_a_traceback(tmp_path):
    missing = str(tmp_path / "systemctl")
    with pytest.raises(WireGuardError, match=r"^systemctl start x@ul0.service: .*No such file"):
        start_userspace("ul0", socket_dir=str(tmp_path), unit="x@ul0.service", systemctl=missing)
