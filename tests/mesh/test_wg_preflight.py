"""``k3snode check`` with mesh wireguard-native: the kernel is asked for real, held ports named."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
from helpers import NetNS, run_k3snode, sh

from k3snode.mesh.wg import preflight

pytestmark = pytest.mark.netns


def _kernel_has_wireguard() -> bool:
    """The oracle, independent of k3snode: iproute2 in a scratch namespace."""
    with NetNS.create() as ns:
        return ns.ip("link", "add", "wgprobe", "type", "wireguard", check=False).returncode == 0


def test_kernel_probe_matches_iproute2_and_leaves_nothing():
    before = sh("ip", "-o", "link").stdout
    ok, why = preflight.kernel_wireguard()
    assert ok is _kernel_has_wireguard()
    if not ok:
        assert "wireguard link" in why
    assert sh("ip", "-o", "link").stdout == before  # the probe ran in its own namespace


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

    (obs,) = health.flannel(load(None, env={"K3SNODE_MESH": "wireguard-native"}))
    assert obs.check == "wireguard:flannel-wg" and not obs.ok
    if _kernel_has_wireguard():
        assert obs.detail == "flannel-wg does not exist (K3s or flannel not up yet?)"
    else:
        assert obs.detail.startswith("flannel-wg does not exist (this kernel has no WireGuard")
        assert 'mesh = "tailscale"' in obs.detail


def _world_readable(path: str) -> bool:
    parts = os.path.abspath(path).split(os.sep)
    dirs = [os.sep + os.path.join(*parts[1:i]) for i in range(2, len(parts) + 1)]
    return all(os.stat(d).st_mode & 0o005 == 0o005 for d in dirs)


def test_check_as_non_root_says_it_could_not_check():
    from helpers import REPO, have

    if not have("setpriv") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs setpriv and /usr/bin/python3")
    if not _world_readable(REPO):
        pytest.skip(f"{REPO} is not readable by an unprivileged user")
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "env", f"PYTHONPATH={REPO}", "/usr/bin/python3", "-m", "k3snode",
         "check", "--json", "--mesh", "wireguard-native"],
        capture_output=True, text=True, cwd="/", timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (kernel,) = [f for f in json.loads(r.stdout) if f["topic"] == "wireguard"]
    assert kernel["level"] == "warning"
    assert kernel["message"] == (
        "could not check for kernel WireGuard: cannot create a network namespace "
        "(Operation not permitted) (run as root)"
    )
