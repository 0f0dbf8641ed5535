"""``k3snode check`` with mesh wireguard-native: the kernel is asked for real, held ports named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from helpers import REPO, NetNS, have, run_k3snode

from k3snode.mesh.wg import preflight

pytestmark = pytest.mark.netns


def _kernel_has_wireguard() -> bool:
    """The oracle, independent of k3snode: iproute2 in a scratch namespace."""
    with NetNS.create() as ns:
        return ns.ip("link", "add", "wgprobe", "type", "wireguard", check=False).returncode == 0


# The probe in a process of its own, counting forks: the daemon that runs it has threads.
PROBE = """
import json, os, sys
forks = []
os.register_at_fork(before=lambda: forks.append(1))
from k3snode.mesh.wg import preflight
ok, why = preflight.kernel_wireguard()
print(json.dumps({"ok": ok, "why": why, "forks": len(forks), "pyroute2": "pyroute2" in sys.modules}))
"""


def _probe(ns: NetNS, *wrapper: str) -> dict:
    r = ns.exec(*wrapper, "env", f"PYTHONPATH={REPO}", sys.executable, "-c", PROBE, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _loaded() -> bool:
    return os.path.isdir("/sys/module/wireguard")


def test_kernel_probe_matches_iproute2_forks_nothing_and_leaves_nothing():
    expected = _kernel_has_wireguard()
    with NetNS.create() as ns:
        before = ns.ip("-o", "link").stdout
        got = _probe(ns)
        assert ns.ip("-o", "link").stdout == before  # the probe link is deleted again
    assert got["forks"] == 0
    assert got["pyroute2"] is False  # the stdlib rtnetlink codec: the daemon asks while idle
    assert got["ok"] is expected
    if not expected:
        assert got["why"].startswith("creating a wireguard link: "), got


def test_kernel_probe_works_with_only_cap_net_admin():
    """As in the hardened unit (CapabilityBoundingSet=CAP_NET_ADMIN): no namespace can be made,
    so the probe that forked into a new one could only say "could not check"; this one answers."""
    if not have("setpriv"):
        pytest.skip("needs setpriv")
    expected = _kernel_has_wireguard()
    with NetNS.create() as ns:
        got = _probe(ns, "setpriv", "--bounding-set=-all,+net_admin", "--inh-caps=-all")
    assert got["ok"] is expected, got
    assert got["forks"] == 0


def test_kernel_probe_without_cap_net_admin_cannot_tell():
    if not have("setpriv"):
        pytest.skip("needs setpriv")
    with NetNS.create() as ns:
        got = _probe(ns, "setpriv", "--bounding-set=-all", "--inh-caps=-all")
    if _loaded():  # sysfs answers before any link is tried
        assert got["ok"] is True
    else:
        assert (got["ok"], got["why"]) == (None, "creating a wireguard link needs CAP_NET_ADMIN")


def test_check_reports_kernel_and_a_held_port():
    with NetNS.create() as ns:
        holder = ns.popen(
            ["python3", "-c", "import socket,sys,time; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM);"
             "s.bind(('::', 51821)); print('bound', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "bound"
            r = run_k3snode("check", "--json", "--mesh", "wireguard-native", netns=ns.name)
        finally:
            holder.kill()
            holder.wait()
    findings = [f for f in json.loads(r.stdout) if f["topic"] == "wireguard"]
    kernel = findings[0]
    if _kernel_has_wireguard():
        assert kernel["level"] == "ok" and r.returncode == 0
    else:
        assert kernel["level"] == "error" and r.returncode == 1
        assert "wireguard-native flannel backend cannot work" in kernel["message"]
        assert 'mesh = "tailscale"' in kernel["message"]
    (port,) = findings[1:]
    assert port["level"] == "warning"
    assert port["message"].startswith("UDP 51821 (flannel-wg-v6's port) is already held by ")
    assert f"(pid {holder.pid})" in port["message"]
    assert "Traceback" not in r.stderr


def test_check_with_another_mesh_skips_wireguard():
    with NetNS.create() as ns:
        r = run_k3snode("check", "--json", "--mesh", "none", netns=ns.name)
    assert r.returncode == 0, r.stderr
    assert not [f for f in json.loads(r.stdout) if f["topic"] == "wireguard"]


def test_udp_port_holders_finds_this_process():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        holders = preflight.udp_port_holders(port)
    finally:
        s.close()
    assert any(h.endswith(f"(pid {os.getpid()})") for h in holders)
    assert preflight.udp_port_holders(port) == []


def test_flannel_observer_says_why_flannel_wg_is_missing():
    """The daemon runs observers from its start: without kernel WireGuard the missing flannel-wg
    is explained, not left to look like K3s starting slowly."""
    from k3snode.config.load import load
    from k3snode.mesh.wg import health

    (obs,) = health.Flannel()(load(None, env={"K3SNODE_MESH": "wireguard-native"}))
    assert obs.check == "wireguard:flannel-wg" and not obs.ok
    if _kernel_has_wireguard():
        assert obs.detail == "flannel-wg does not exist (K3s or flannel not up yet?)"
    else:
        assert obs.detail.startswith("flannel-wg does not exist (this kernel has no WireGuard")
        assert 'mesh = "tailscale"' in obs.detail


def test_check_without_cap_net_admin_says_it_could_not_check():
    """Root without capabilities (as a non-root user): the check cannot ask the kernel, and says so
    instead of calling the kernel bad."""
    if not have("setpriv"):
        pytest.skip("needs setpriv")
    with NetNS.create() as ns:
        r = ns.exec("setpriv", "--bounding-set=-all", "--inh-caps=-all",
                    "env", f"PYTHONPATH={REPO}", sys.executable, "-m", "k3snode",
                    "check", "--json", "--mesh", "wireguard-native", check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (kernel,) = [f for f in json.loads(r.stdout) if f["topic"] == "wireguard"]
    if _loaded():
        assert kernel["level"] == "ok"
    else:
        assert kernel["level"] == "warning"
        assert kernel["message"] == (
            "could not check for kernel WireGuard: creating a wireguard link needs CAP_NET_ADMIN"
        )
