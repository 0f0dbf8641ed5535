"""A quiet journal: the .deb installed in a fresh Debian 12 tree booted with systemd, the WireGuard
module absent (this host's kernel has none; the unit may not load modules anyway) and no K3s unit.
The daemon runs for a minute, with a health grace short enough for its checks to turn failing,
then stops. Its journal is a fixed, small set of lines: each condition once, nothing from pyroute2
or its tc probe, no traceback — at start, while running, or at stop."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from debian_tree import BOOT_PACKAGES, Machine, build_deb, have_tools, rootfs

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "nsenter"),
        reason="needs systemd-container, mmdebstrap and the packaging tools",
    ),
    pytest.mark.skipif(
        os.path.isdir("/sys/module/wireguard"), reason="this kernel has the WireGuard module loaded"
    ),
]

# mesh wireguard-native (the default): the flannel observer runs from the start and finds no
# flannel-wg and no module; no K3s unit: its check fails and a restart finds nothing to restart.
SETTINGS = """[node]
role = "server"
[discovery]
external_ips = ["16.16.16.16"]
provider = "none"
[health]
grace = 10
"""
RUN_FOR = 60


def _lines(m: Machine) -> list[dict]:
    out = m.sh("journalctl", "--no-pager", "-o", "json", "-u", "k3snode.service").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_minute_of_a_node_without_wireguard_or_k3s_is_a_few_lines(tmp_path):
    root = rootfs(str(tmp_path / "root"), "boot", BOOT_PACKAGES)
    deb = build_deb()
    shutil.copy(deb, os.path.join(root, "srv"))
    with Machine.boot(root, args=["--private-network"]) as m:
        m.sh("dpkg", "-i", "/srv/" + os.path.basename(deb))
        m.write("/etc/k3snode/config.toml", SETTINGS)
        assert m.sh("test", "-d", "/sys/module/wireguard", check=False).returncode == 1
        m.sh("systemctl", "start", "k3snode.service", timeout=120)
        time.sleep(RUN_FOR)
        status = m.sh("k3snode", "status").stdout
        m.sh("systemctl", "stop", "k3snode.service")
        st = m.show("k3snode.service", "ActiveState", "Result", "NRestarts")
        assert st == {"ActiveState": "inactive", "Result": "success", "NRestarts": "0"}
        entries = _lines(m)
        text = m.journal("k3snode.service")

    ours = [e["MESSAGE"] for e in entries if e.get("_COMM") not in ("systemd",) and
            e.get("SYSLOG_IDENTIFIER") != "systemd"]  # fmt: skip
    assert ours, text
    # Nothing but k3snode's own lines: no library, no traceback, no warnings module.
    for line in ours:
        assert isinstance(line, str) and line.startswith("k3snode: "), (line, text)
    for word in ("Traceback", "Exception ignored", "pyroute2", "psched", "tc subsystem",
                 "Generic netlink", "Errno 98", "protocol module"):  # fmt: skip
        assert word not in text, (word, text)
    # Each condition once.
    kernel = [ln for ln in ours if "has no WireGuard module" in ln]
    assert len(kernel) == 1, text
    assert 'set [node] mesh = "tailscale"' in kernel[0]
    assert (
        len([ln for ln in ours if ln.startswith("k3snode: k3s: k3s.service is not installed")]) == 1
    ), text
    assert len([ln for ln in ours if ln.startswith("k3snode: written ")]) == 1, text
    assert ours[-2:] == ["k3snode: SIGTERM: stopping", "k3snode: stopped"], text
    assert ours[0] == "k3snode: health endpoint on http://127.0.0.1:9181/healthz"
    assert len([ln for ln in ours if ln.startswith("k3snode: ready: ")]) == 1, text
    assert len(ours) == 7, "\n".join(ours)
    # ...and what was not logged is still in `k3snode status`.
    assert "16.16.16.16 (static)" in status
    assert "wireguard:flannel-wg" in status and "k3s " in status
