"""install.sh over an installed k3snode, in one booted tree — Debian 12 through the .deb, Debian 13
through the virtualenv — against the stand-in internet of ``tests/internet.py``, serving two releases: this checkout's and the same
tree built as a later version (``internet.bumped_release_set``).

- ``INSTALL_K3SNODE_SKIP_ENABLE=true``: installed and configured, the unit neither enabled nor
  started; ``INSTALL_K3SNODE_SKIP_START=true``: enabled, not started; a plain run then starts it.
- The one-liner against the later release upgrades in place: the package is the new version, the
  unit restarted exactly once onto it (for the .deb, by its postinst's try-restart alone), the saved settings, k3snode.env and token untouched (content
  and mode), and K3s not restarted (its config did not change).
"""

from __future__ import annotations

import json
import os

import pytest
from debian_tree import CLOUD_PACKAGES, SUITES, Machine, have_tools, rootfs
from helpers import wait_for
from internet import ONE_LINER_URL, RELEASES, Internet, bumped_release_set, release_set, version

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools(
            "systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "rpmbuild", "nsenter", "openssl"
        ),
        reason="needs systemd-container, mmdebstrap, the packaging tools and openssl",
    ),
]

NEW = "0.1.1"
SERVER_URL = "https://k3s-server.example.com:6443"
TOKEN = "K10upgrade0123456789abcdef::server:0123456789abcdef"
NODE = f"K3S_URL={SERVER_URL} K3S_TOKEN={TOKEN}"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL = ("env", "-i", f"PATH={ROOT_PATH}", "HOME=/root", "LANG=C.UTF-8", "sh")
KEPT = ("/etc/k3snode/k3snode.env", "/var/lib/k3snode/token", "/etc/k3snode/config.toml")
# systemd's "unit started" journal message (sd-messages.h SD_MESSAGE_UNIT_STARTED).
UNIT_STARTED = "MESSAGE_ID=39f53479d3a045ac8e11786248231fbf"


def one_liner(env: str) -> str:
    return f"curl -sfL {ONE_LINER_URL} | {env} sh -\n"


def install(m: Machine, env: str) -> str:
    out = m.sh(*SHELL, input=one_liner(env), check=False, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert TOKEN not in out.stdout + out.stderr
    return out.stdout


def k3snode_starts(m: Machine) -> int:
    out = m.sh("journalctl", "-o", "cat", "_PID=1", "UNIT=k3snode.service", UNIT_STARTED).stdout
    return len(out.splitlines())


def k3s_starts(m: Machine) -> list[dict]:
    out = m.sh("cat", "/var/log/stub-k3s.jsonl", check=False).stdout
    return [json.loads(line) for line in out.splitlines()]


def files(m: Machine) -> dict[str, tuple[str, str, str] | None]:
    """Each kept file's mode, mtime.ctime and content (None: absent, as config.toml where no
    package shipped it)."""
    out: dict[str, tuple[str, str, str] | None] = {}
    for path in KEPT:
        if not exists(m, path):
            out[path] = None
            continue
        mode, stamp = m.sh("stat", "-c", "%a %Y.%Z", path).stdout.split()
        out[path] = (mode, stamp, m.read(path))
    return out


def enabled(m: Machine) -> str:
    return m.sh("systemctl", "is-enabled", "k3snode.service", check=False).stdout.strip()


def exists(m: Machine, path: str) -> bool:
    return m.sh("test", "-e", path, check=False).returncode == 0


def stat(m: Machine, path: str) -> str:
    return m.sh("stat", "-c", "%a %Y.%Z", path).stdout


def installed(m: Machine, method: str) -> str:
    """The version of k3snode the package manager (or the virtualenv's pip) has installed."""
    if method == "deb":
        out = m.sh("dpkg-query", "-W", "-f", "${Version} ${Status}", "k3snode").stdout
        assert out.endswith(" install ok installed"), out
        return out.split()[0]
    code = "import importlib.metadata as m; print(m.version('k3snode'))"
    return m.sh("/opt/k3snode/bin/python", "-c", code).stdout.strip()


def payload(method: str, v: str) -> str:
    return f"k3snode_{v}_all.deb" if method == "deb" else f"k3snode-{v}-py3-none-any.whl"


@pytest.fixture(scope="module")
def internet(tmp_path_factory) -> Internet:
    net = Internet(str(tmp_path_factory.mktemp("net")), release_set(), SUITES)
    os.symlink(bumped_release_set(NEW), os.path.join(net.www, RELEASES, "download", f"v{NEW}"))
    return net


def release_latest(internet: Internet, v: str) -> None:
    """Publish v as the latest release (GitHub's …/releases/latest/download/ follows it)."""
    link = os.path.join(internet.www, RELEASES, "latest", "download")
    os.unlink(link)
    os.symlink(f"../download/v{v}", link)


@pytest.mark.parametrize(("suite", "method"), [("bookworm", "deb"), ("trixie", "venv")])
def test_skip_enable_skip_start_then_an_upgrade(internet, tmp_path, suite, method):
    old = version()
    assert old != NEW
    root = rootfs(str(tmp_path / "root"), "cloud", CLOUD_PACKAGES, suite=suite)
    internet.prepare(root, suite)
    release_latest(internet, old)
    with internet.serve() as node:
        args = [f"--network-namespace-path=/run/netns/{node.name}", "--capability=CAP_NET_ADMIN"]
        with Machine.boot(root, args=args) as m:
            # Skip enable: installed (the .deb enables its unit; the installer undoes that) and
            # configured, neither enabled nor started. (The method is given once: later runs keep
            # the one the installer used.)
            first = f"INSTALL_K3SNODE_METHOD={method} INSTALL_K3SNODE_SKIP_ENABLE=true"
            out = install(m, f"{NODE} {first}")
            assert "not enabled" in out and "not started" in out
            assert installed(m, method) == old
            assert enabled(m) == "disabled"
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "inactive"
            assert k3snode_starts(m) == 0
            env = m.read("/etc/k3snode/k3snode.env")
            assert "K3SNODE_ROLE=agent\n" in env and f"K3S_URL={SERVER_URL}\n" in env
            assert m.read("/var/lib/k3snode/token").strip() == TOKEN
            assert exists(m, "/usr/local/bin/k3snode-uninstall.sh")
            assert f"method={method}" in m.read("/usr/local/lib/k3snode/install.manifest")
            assert not exists(m, "/etc/rancher/k3s/config.yaml")

            # Skip start: enabled now, still not started; nothing else rewritten.
            kept = files(m)
            assert None not in (kept[p] for p in KEPT[:2]), kept
            assert (kept["/etc/k3snode/config.toml"] is None) == (method == "venv"), kept
            assert kept["/var/lib/k3snode/token"][0] == "600", kept
            out = install(m, f"{NODE} INSTALL_K3SNODE_SKIP_START=true")
            assert "k3snode.service enabled" in out and "not started" in out
            assert enabled(m) == "enabled"
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "inactive"
            assert k3snode_starts(m) == 0
            assert files(m) == kept

            # The plain line, this time with K3s: started, K3s joined as an agent.
            install(m, f"{NODE} INSTALL_K3SNODE_VERSION=v{old} INSTALL_K3SNODE_K3S=true")
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "active"
            wanted = f"/download/v{old}/{payload(method, old)} 200"
            assert any(wanted in r for r in internet.requests())
            wait_for(lambda: k3s_starts(m), 60, what="K3s to start")
            assert k3snode_starts(m) == 1
            assert files(m) == kept

            # The next release: the same one-liner upgrades in place.
            release_latest(internet, NEW)
            before = m.show("k3snode.service", "MainPID", "InvocationID")
            k3s_before = k3s_starts(m)
            config_before = m.read("/etc/rancher/k3s/config.yaml")
            config_stamp = stat(m, "/etc/rancher/k3s/config.yaml")
            out = install(m, f"{NODE} INSTALL_K3SNODE_K3S=true")
            assert payload(method, NEW) in out
            assert installed(m, method) == NEW
            assert m.sh(*SHELL, input="k3snode --version\n").stdout.strip().endswith(NEW)
            # Restarted exactly once, onto the new program (every start after the upgrade's
            # unpacking runs it).
            after = m.show("k3snode.service", "ActiveState", "MainPID", "InvocationID")
            assert after["ActiveState"] == "active"
            assert after["MainPID"] != before["MainPID"]
            assert after["InvocationID"] != before["InvocationID"]
            assert k3snode_starts(m) == 2, m.journal("k3snode.service")[-3000:]
            assert files(m) == kept
            # K3s: its config unchanged (the new daemon's first pass, done before READY=1, left
            # the file alone), so not restarted.
            assert m.read("/etc/rancher/k3s/config.yaml") == config_before
            assert stat(m, "/etc/rancher/k3s/config.yaml") == config_stamp
            assert k3s_starts(m) == k3s_before
            assert m.show("k3s-agent.service", "ActiveState")["ActiveState"] == "active"
