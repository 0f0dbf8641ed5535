"""The .deb on a fresh Debian 12 tree booted with systemd in nspawn, the way a user meets it:
installed and enabled but not configured (writes nothing, says what to do), settings + reload,
a typo at reload and at start, then ``k3snode configure`` with K3S_URL/K3S_TOKEN and a reboot of
the container: still an agent, and the token in no journal field, argv or non-0600 file."""

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
]
# Discovery works offline (a static address), so only "not configured" keeps k3snode from writing.
DISCOVERY = '[discovery]\nexternal_ips = ["16.16.16.16"]\nprovider = "none"\n'
SERVER = '[node]\nrole = "server"\n' + DISCOVERY
TYPO = '[node]\nrole = "sever"\n' + DISCOVERY
TOKEN = "K10feedface::server:first-boot-secret-7d1c"
K3S = "/etc/rancher/k3s/config.yaml"


def healthz(m: Machine) -> tuple[int, dict]:
    code = (
        "import json, urllib.request, urllib.error\n"
        "try:\n    r = urllib.request.urlopen('http://127.0.0.1:9181/healthz', timeout=5)\n"
        "except urllib.error.HTTPError as e:\n    r = e\n"
        "print(r.status if hasattr(r, 'status') else r.code); print(r.read().decode())\n"
    )
    out = m.sh("python3", "-c", code).stdout
    status, _, body = out.partition("\n")
    return int(status), json.loads(body)


def exists(m: Machine, path: str) -> bool:
    return m.sh("test", "-e", path, check=False).returncode == 0


def test_unconfigured_boot_reload_typos_configure_and_reboot(tmp_path):
    root = rootfs(str(tmp_path / "root"), "boot", BOOT_PACKAGES)
    deb = build_deb()
    shutil.copy(deb, os.path.join(root, "srv"))
    inside = "/srv/" + os.path.basename(deb)
    with Machine.boot(root, args=["--private-network"]) as m:
        out = m.sh("dpkg", "-i", inside).stdout
        assert "k3snode is installed but not configured" in out
        assert "K3S_URL=https://SERVER:6443 K3S_TOKEN=... k3snode configure" in out
        m.write("/etc/k3snode/config.toml", DISCOVERY)  # no role, no server: not configured

        # Not configured: up and ready, nothing written, the same line everywhere.
        m.sh("systemctl", "start", "k3snode.service")
        st = m.show("k3snode.service", "ActiveState", "StatusText")
        assert st["ActiveState"] == "active"
        assert st["StatusText"].startswith("not configured: no role, server URL or cluster_init")
        assert "systemctl reload k3snode" in st["StatusText"]
        code, health = healthz(m)
        assert code == 503 and health["status"] == "not-configured"
        assert st["StatusText"] in m.sh("k3snode", "status").stdout
        assert not exists(m, K3S)

        # Settings appear; systemctl reload: the daemon goes on as at a normal start.
        pid = m.show("k3snode.service", "MainPID")["MainPID"]
        m.write("/etc/k3snode/config.toml", SERVER)
        m.sh("systemctl", "reload", "k3snode.service")
        m.wait_for(lambda: exists(m, K3S), 20, what="the K3s config")
        written = m.read(K3S)
        assert "16.16.16.16" in written and "flannel-backend: wireguard-native" in written
        m.wait_for(lambda: healthz(m)[0] == 200, 20, what="healthy")
        assert m.show("k3snode.service", "MainPID")["MainPID"] == pid

        # A typo, then systemctl reload: fails with the line; the old settings stay.
        m.write("/etc/k3snode/config.toml", TYPO)
        r = m.sh("systemctl", "reload", "k3snode.service", check=False)
        assert r.returncode != 0
        line = "[node] role: must be server or agent; did you mean 'server'? (got 'sever')"
        assert line in m.journal("k3snode.service")
        st = m.show("k3snode.service", "ActiveState", "MainPID", "StatusText")
        assert st["ActiveState"] == "active" and st["MainPID"] == pid
        m.wait_for(
            lambda: line in m.show("k3snode.service", "StatusText")["StatusText"],
            10,
            what="the error in STATUS=",
        )
        code, health = healthz(m)
        assert code == 503 and any(line in c["detail"] for c in health["checks"])
        assert m.read(K3S) == written

        # A typo at start: the unit fails once and is not restarted in a loop.
        m.sh("systemctl", "restart", "k3snode.service", check=False)
        time.sleep(7)  # longer than RestartSec=5: a restart loop would have started by now
        st = m.show("k3snode.service", "ActiveState", "NRestarts", "ExecMainStatus")
        assert st == {"ActiveState": "failed", "NRestarts": "0", "ExecMainStatus": "2"}
        assert m.read(K3S) == written

        # The installer's step: K3S_URL/K3S_TOKEN through the environment only.
        m.write("/etc/k3snode/config.toml", DISCOVERY)
        m.write("/root/token", TOKEN + "\n")
        m.sh("chmod", "600", "/root/token")
        out = m.sh(
            "sh", "-c",
            "K3S_URL=https://10.0.0.1:6443 K3S_TOKEN=$(cat /root/token) k3snode configure",
        ).stdout  # fmt: skip
        m.sh("rm", "/root/token")
        assert out.strip() == (
            "saved /etc/k3snode/k3snode.env: K3S_URL, K3S_TOKEN_FILE "
            "(token in /var/lib/k3snode/token, 0600)"
        )
        assert m.read(K3S) == written  # configure writes no K3s config
        m.sh("systemctl", "start", "k3snode.service")
        m.wait_for(lambda: "server: https://10.0.0.1:6443" in m.read(K3S), 20, what="agent")

    # A reboot: the daemon alone (no environment) still renders the same agent.
    with Machine.boot(root, args=["--private-network"]) as m:
        m.wait_for(
            lambda: m.show("k3snode.service", "ActiveState")["ActiveState"] == "active",
            30,
            what="k3snode at boot",
        )
        cfg = m.read(K3S)
        assert "server: https://10.0.0.1:6443" in cfg
        assert "token-file: /var/lib/k3snode/token" in cfg
        assert "flannel-backend" not in cfg and "16.16.16.16" in cfg
        assert m.show("k3snode.service", "NRestarts")["NRestarts"] == "0"
        assert m.sh("k3snode", "status", "--json").returncode == 0
        # The token: in no journal field, no argv, no file readable by anyone but root.
        assert TOKEN not in m.sh("journalctl", "-o", "export", "--no-pager").stdout
        argv = m.sh("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
        assert "k3snode run" in argv and TOKEN not in argv
        holders = m.sh(
            "grep", "-rlF", TOKEN, "/etc", "/var", "/run", "/root", "/tmp", check=False
        ).stdout.split()
        assert holders == ["/var/lib/k3snode/token"]
        assert m.sh("stat", "-c", "%a", *holders).stdout.split() == ["600"]
