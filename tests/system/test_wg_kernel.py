"""The kernel backend and the underlay on kernel WireGuard, in a qemu TCG guest running Debian's
cloud kernel (this machine's kernel has no WireGuard). Slow: builds its guest under
``<repo>/.cache/wg-guest/`` when missing (about a minute), then about a minute per run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from helpers import REPO, have

from k3snode.mesh.wg import keys

pytestmark = pytest.mark.system
HERE = os.path.dirname(os.path.abspath(__file__))


def _toml(me: int, peers: list[tuple[int, str]]) -> str:
    text = f"""\
[paths]
state_dir = "/tmp/state{me}"
[underlay]
enabled = true
interface = "wg-ul"
address = "10.99.0.{me}/24"
private_key_file = "/tmp/{me}.key"
userspace = "never"
keepalive = 2
"""
    for j, pub in peers:
        text += f"""
[[underlay.peers]]
name = "n{j}"
public_key = "{pub}"
endpoint = "192.0.2.{j}:51822"
address = "10.99.0.{j}"
"""
    return text


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    if not have("qemu-system-x86_64", "mmdebstrap", "depmod", "cpio", "mke2fs", "busybox"):
        pytest.skip("needs qemu-system-x86 mmdebstrap kmod busybox-static cpio e2fsprogs")
    d = tmp_path_factory.mktemp("guest")
    shutil.copytree(os.path.join(REPO, "k3snode"), d / "src" / "k3snode",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for f in ("guest_wg_kernel.py", "guest_backend.py"):
        shutil.copy(os.path.join(HERE, f), d / f)
    import pyroute2  # the PyPI release from this venv, pure Python: the guest runs it too

    shutil.copytree(os.path.dirname(pyroute2.__file__), d / "pypi" / "pyroute2",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    privs = [keys.generate_private() for _ in range(2)]
    pubs = [keys.public_key(k) for k in privs]
    peers = [(1, pubs[0]), (2, pubs[1])]
    (d / "a.toml").write_text(_toml(1, peers))
    (d / "b.toml").write_text(_toml(2, peers))
    (d / "a-alone.toml").write_text(_toml(1, [(1, pubs[0])]))  # b removed
    # keys made here, written by the guest's own run.sh into its /tmp (0600)
    (d / "run.sh").write_text(
        "umask 077\n"
        f"echo '{privs[0].reveal()}' > /tmp/1.key\n"
        f"echo '{privs[1].reveal()}' > /tmp/2.key\n"
        "python3 guest_wg_kernel.py debian\n"
        "python3 guest_wg_kernel.py pypi\n"
    )
    log = d / "console.log"
    r = subprocess.run([os.path.join(HERE, "wg_guest.sh"), str(d), str(log)],
                       capture_output=True, text=True, timeout=1800)  # fmt: skip
    console = log.read_text(errors="replace") if log.exists() else ""
    assert r.returncode == 0, r.stderr[-3000:] + console[-3000:]
    results = {}
    for line in console.splitlines():
        if line.startswith("RESULT "):
            _, name, value = line.split(" ", 2)
            results[name] = json.loads(value)
    assert "GUEST-DONE" in console, console[-3000:]
    return results, pubs, console


@pytest.fixture(params=["debian", "pypi"])
def run(request, guest):
    """One guest run's results: with Debian's python3-pyroute2 (0.7.2) or the PyPI release."""
    results, pubs, console = guest
    label = request.param
    assert results[f"{label}.pyroute2"].startswith("/guest/pypi/" if label == "pypi" else "/usr/")
    mine = {k.split(".", 1)[1]: v for k, v in results.items() if k.startswith(label + ".")}
    return mine, pubs, console


def test_kernel_preflight_is_ok(run):
    results, _, _ = run
    found = json.loads(results["check"]["out"])
    kernel = next(f for f in found if f["topic"] == "wireguard")
    assert kernel["level"] == "ok", kernel
    underlay = [f["message"] for f in found if f["topic"] == "underlay"]
    assert not any("wireguard-go" in m for m in underlay)


@pytest.mark.parametrize("name", ["probe_unloaded", "probe_net_admin_only"])
def test_kernel_probe_loads_the_module_without_forking(run, name):
    """With the module unloaded, the probe creates a wireguard link (which loads the module) and
    deletes it again, in its own process — also with only CAP_NET_ADMIN, as in the hardened unit."""
    results, _, _ = run
    r = results[name]
    assert r["rc"] == 0, r
    ok, why, forks, loaded = json.loads(r["out"])
    assert (ok, why, forks, loaded) == (True, "a wireguard link can be created", 0, True)
    assert "k3snode-p" not in r["links"]  # deleted again


def test_underlay_on_kernel_wireguard(run):
    results, pubs, _ = run
    for name in ("up_b", "up_a"):
        r = results[name]
        assert r["rc"] == 0, r
        assert "created wg-ul (kernel WireGuard)" in r["out"], r
        assert r["out"].count(" added ") == 1  # itself skipped
    assert results["ping"]["rc"] == 0, results["ping"]
    assert results["again_a"]["out"].strip() == "unchanged", results["again_a"]
    show = json.loads(results["show_a"]["out"])
    assert show["ok"] and show["facts"]["backend"] == "kernel"
    (peer,) = show["peers"]
    assert peer["public_key"] == pubs[1] and peer["name"] == "n2"
    assert peer["endpoint"] == "192.0.2.2:51822" and peer["last_handshake"]
    assert peer["rx_bytes"] > 0
    r = results["remove_a"]
    assert r["rc"] == 0 and f"peer {pubs[1][:8]}… removed" in r["out"], r
    assert json.loads(results["after_remove"]["out"])["peers"] == []


def test_kernel_backend_change_remove_replace(run):
    results, _, _ = run
    r = results["backend"]
    assert r["rc"] == 0, r["err"]
    out = json.loads(r["out"])
    assert out["first"]["public_key_ok"] and out["first"]["port"] == 51830
    assert out["first"]["peers"] == [
        [False, "[2001:db8::2]:2", ["10.1.0.2/32", "fd00::2/128"], 5],
        [True, "192.0.2.9:1", ["10.1.0.1/32"], 0],
    ]
    assert out["changed"] == [7, "192.0.2.9:1", ["10.1.0.11/32"], 51830]
    assert out["removed"] == [True]
    assert out["replaced"] == [True]
    # flannel's interface through the kernel backend: one peer, fresh (no handshake yet)
    assert out["flannel"] == [["wireguard:flannel-wg", True, "kernel", "1"]]
    # the observer kept across calls keeps its one netlink socket: no new one per health check
    before, after = out["flannel_sockets"]
    assert after == before, out["flannel_sockets"]
