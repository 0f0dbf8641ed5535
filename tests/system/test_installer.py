"""install.sh the way a new user meets it: a fresh Debian 12 or 13 tree with what a cloud image has
(no k3snode dependency), booted with systemd in nspawn, offline but for the stand-in internet of
``tests/internet.py`` (release set on github.com, stub K3s installer on get.k3s.io, Debian and PyPI
mirror). The README's one-liner installs, configures, enables and starts k3snode and K3s; a second
run changes nothing; after a reboot the node is still the agent it was told to be; the token is in
no journal field, argv or loosely readable file; the uninstaller removes what was installed."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess

import pytest
import yaml
from debian_tree import CLOUD_PACKAGES, SUITES, Machine, have_tools, rootfs
from helpers import REPO, wait_for
from internet import ONE_LINER_URL, Internet, release_set, version

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools(
            "systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "rpmbuild", "nsenter", "openssl"
        ),
        reason="needs systemd-container, mmdebstrap, the packaging tools and openssl",
    ),
]

SERVER_URL = "https://k3s-server.example.com:6443"
TOKEN = f"K10{secrets.token_hex(24)}::server:{secrets.token_hex(16)}"
ONE_LINER = f"curl -sfL {ONE_LINER_URL} | K3S_URL={SERVER_URL} K3S_TOKEN={TOKEN} INSTALL_K3SNODE_K3S=true sh -"
BOOT_ARGS = ("--capability=CAP_NET_ADMIN",)
# A root shell's environment on the node (nothing of the test runner's leaks in, e.g. PIP_*).
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's for root
SHELL = ("env", "-i", f"PATH={ROOT_PATH}", "HOME=/root", "LANG=C.UTF-8", "sh")
INSTALLED_PATHS = (
    "/etc/k3snode",
    "/var/lib/k3snode",
    "/usr/local/bin/k3snode-uninstall.sh",
    "/usr/local/lib/k3snode",
    "/opt/k3snode",
    "/usr/local/bin/k3snode",
    "/etc/systemd/system/k3snode.service",
)


@pytest.fixture(scope="module")
def internet(tmp_path_factory) -> Internet:
    return Internet(str(tmp_path_factory.mktemp("net")), release_set(), SUITES)


def exists(m: Machine, path: str) -> bool:
    return m.sh("test", "-e", path, check=False).returncode == 0


def k3s_starts(m: Machine) -> list[dict]:
    out = m.sh("cat", "/var/log/stub-k3s.jsonl", check=False).stdout
    return [json.loads(line) for line in out.splitlines()]


def assert_token_hidden(m: Machine) -> None:
    """The token is in no journal field, no process's argv, and only in files no one but root
    may read."""
    assert TOKEN not in m.sh("journalctl", "--no-pager", "-o", "export").stdout
    argv = m.sh("sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '").stdout
    assert TOKEN not in argv
    found = m.sh(
        "grep", "-rlsF", "-f", "-", "--exclude-dir=proc", "--exclude-dir=sys", "/", check=False,
        input=TOKEN + "\n",
    ).stdout.split()  # fmt: skip
    assert "/var/lib/k3snode/token" in found
    for path in found:
        mode, owner = m.sh("stat", "-c", "%a %U", path).stdout.split()
        assert int(mode, 8) & 0o077 == 0 and owner == "root", (path, mode, owner)


@pytest.mark.parametrize(("suite", "method"), [("bookworm", "deb"), ("trixie", "venv")])
def test_one_liner_joins_an_agent_that_stays_one(internet, tmp_path, suite, method):
    root = rootfs(str(tmp_path / "root"), "cloud", CLOUD_PACKAGES, suite=suite)
    internet.prepare(root, suite)
    assert not os.path.exists(os.path.join(root, "usr/lib/python3/dist-packages/yaml"))
    line = (
        ONE_LINER if method == "deb" else ONE_LINER.replace("| ", "| INSTALL_K3SNODE_METHOD=venv ")
    )
    with internet.serve() as node:
        args = [f"--network-namespace-path=/run/netns/{node.name}", *BOOT_ARGS]
        with Machine.boot(root, args=args) as m:
            # The one-liner, typed into a shell (its stdin): the token is in no process's argv.
            out = m.sh(*SHELL, input=line + "\n", check=False, timeout=600)
            log = out.stdout + out.stderr
            assert out.returncode == 0, log
            assert TOKEN not in log
            assert "Verified" in log and "SHA256SUMS" in log
            served = internet.requests()
            if method == "deb":
                assert m.sh("dpkg-query", "-W", "-f", "${Status}", "k3snode").stdout.endswith(
                    "installed"
                )
                assert any("_all.deb 200" in r for r in served), served
                assert any(r.startswith("mirror.test /apt/") for r in served), served
                assert not exists(m, "/opt/k3snode")
            else:
                assert m.sh("readlink", "/usr/local/bin/k3snode").stdout.strip() == (
                    "/opt/k3snode/bin/k3snode"
                )
                unit = m.read("/etc/systemd/system/k3snode.service")
                assert "\nExecStart=/opt/k3snode/bin/k3snode run\n" in unit
                assert "/usr/bin/k3snode" not in unit  # ExecReload too
                assert any(".whl 200" in r and "github.com" in r for r in served), served
                assert any(r.startswith("mirror.test /wheels/") for r in served), served
                assert m.sh("dpkg-query", "-W", "k3snode", check=False).returncode != 0
            assert m.sh(*SHELL, input="k3snode --version\n").returncode == 0  # on PATH
            # Saved: role, server and the token's 0600 file; the secret itself only in that file.
            env = m.read("/etc/k3snode/k3snode.env")
            assert "K3SNODE_ROLE=agent\n" in env and f"K3S_URL={SERVER_URL}\n" in env
            assert "K3S_TOKEN_FILE=/var/lib/k3snode/token\n" in env and TOKEN not in env
            assert m.sh("stat", "-c", "%a", "/etc/k3snode/k3snode.env").stdout.strip() == "600"
            assert m.sh("stat", "-c", "%a", "/var/lib/k3snode/token").stdout.strip() == "600"
            assert m.read("/var/lib/k3snode/token").strip() == TOKEN
            # K3s's installer: told the role, not to start, and not given the token.
            k3s_install = m.read("/var/log/stub-k3s-install.log").split()
            assert "INSTALL_K3S_SKIP_START=true" in k3s_install
            assert "INSTALL_K3S_EXEC=agent" in k3s_install
            assert "K3S_TOKEN" not in k3s_install and "K3S_URL" not in k3s_install
            # k3snode and K3s: enabled, running, K3s started after k3snode was ready.
            for unit in ("k3snode.service", "k3s-agent.service"):
                assert m.sh("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
            starts = wait_for(lambda: k3s_starts(m), 60, what="K3s to start")
            k3snode = m.show("k3snode.service", "ActiveState", "ActiveEnterTimestampMonotonic")
            k3s = m.show("k3s-agent.service", "ExecMainStartTimestampMonotonic")
            assert k3snode["ActiveState"] == "active"
            assert int(k3snode["ActiveEnterTimestampMonotonic"]) <= int(
                k3s["ExecMainStartTimestampMonotonic"]
            )
            first = yaml.safe_load(starts[0]["config"])
            assert starts[0]["argv"] == ["agent"]
            assert first["server"] == SERVER_URL
            assert first["token-file"] == "/var/lib/k3snode/token"
            assert "flannel-backend" not in first  # a server-only key would stop an agent
            # The unit's reload (k3snode reload: check, then SIGHUP) works where it was installed.
            assert m.sh("systemctl", "reload", "k3snode.service", check=False).returncode == 0
            # The same line again: nothing changes, nothing restarts.
            pid = m.show("k3snode.service", "MainPID")["MainPID"]
            stamp = m.sh(
                "stat", "-c", "%Y.%Z", "/etc/k3snode/k3snode.env", "/var/lib/k3snode/token"
            )
            again = m.sh(*SHELL, input=line + "\n", check=False, timeout=300)
            assert again.returncode == 0, again.stdout + again.stderr
            assert "unchanged" in again.stdout
            assert m.show("k3snode.service", "MainPID")["MainPID"] == pid
            assert (
                m.sh(
                    "stat", "-c", "%Y.%Z", "/etc/k3snode/k3snode.env", "/var/lib/k3snode/token"
                ).stdout
                == stamp.stdout
            )
            starts = k3s_starts(m)
            assert len(starts) == 1, (starts, m.journal("k3snode.service")[-4000:])
            # A typo in the settings file: the rerun stops before changing anything, in one line.
            original = m.read("/etc/k3snode/config.toml") if method == "deb" else None
            m.write("/etc/k3snode/config.toml", '[node]\nrol = "agent"\n')
            typo = m.sh(*SHELL, input=line + "\n", check=False, timeout=120)
            assert typo.returncode == 2, typo.stdout + typo.stderr
            assert typo.stderr.strip().splitlines() == [
                "k3snode: error: /etc/k3snode/config.toml: unknown key [node] rol (did you mean role?)"
            ]
            assert "Downloading" not in typo.stdout
            assert m.show("k3snode.service", "MainPID")["MainPID"] == pid
            if original is None:
                m.sh("rm", "/etc/k3snode/config.toml")
            else:
                m.write("/etc/k3snode/config.toml", original)
        # A reboot: the daemon reads what it was told; the node is still an agent.
        with Machine.boot(root, args=args) as m:
            starts = wait_for(lambda: k3s_starts(m)[1:], 90, what="K3s to start after the reboot")
            config = yaml.safe_load(starts[0]["config"])
            assert starts[0]["argv"] == ["agent"]
            assert config["server"] == SERVER_URL
            assert config["token-file"] == "/var/lib/k3snode/token"
            assert "flannel-backend" not in config
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "active"
            current = yaml.safe_load(m.read("/etc/rancher/k3s/config.yaml"))
            assert current["server"] == SERVER_URL and "token-file" in current
            assert_token_hidden(m)
            # The uninstaller removes what the installer put there; K3s stays.
            out = m.sh("/usr/local/bin/k3snode-uninstall.sh", check=False)
            assert out.returncode == 0, out.stdout + out.stderr
            assert [p for p in INSTALLED_PATHS if exists(m, p)] == []
            assert m.sh("dpkg-query", "-W", "k3snode", check=False).returncode != 0 or (
                "not-installed" in m.sh("dpkg-query", "-W", "-f", "${Status}", "k3snode").stdout
            )
            assert m.show("k3s-agent.service", "ActiveState")["ActiveState"] == "active"
            assert exists(m, "/etc/rancher/k3s/config.yaml")


def readme_checkout_command() -> str:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        section = f.read().split("## Install and run\n", 1)[1].split("\n## ", 1)[0]
    return next(b for b in re.findall(r"```sh\n(.*?)\n```", section, re.S) if "./install.sh" in b)


@pytest.mark.parametrize("suite", SUITES)
def test_readme_install_from_a_checkout(internet, tmp_path, suite):
    """The README's from-checkout command, as root in a checkout on a fresh Debian 12 / 13: a
    virtualenv (no PEP 668 refusal), k3snode on PATH, its unit running the virtualenv's program."""
    command = readme_checkout_command()
    assert command.endswith("./install.sh") and "K3S_URL=https://" in command
    root = rootfs(str(tmp_path / "root"), "cloud", CLOUD_PACKAGES, suite=suite)
    internet.prepare(root, suite)
    subprocess.run(
        [os.path.join(REPO, "packaging", "stage.sh"), os.path.join(root, "root", "k3snode")],
        check=True,
        timeout=120,
    )
    with internet.serve() as node:
        args = [f"--network-namespace-path=/run/netns/{node.name}", *BOOT_ARGS]
        with Machine.boot(root, args=args) as m:
            out = m.sh(*SHELL, input=f"cd /root/k3snode && {command}\n", check=False, timeout=600)
            log = out.stdout + out.stderr
            assert out.returncode == 0, log
            assert "externally-managed-environment" not in log
            assert m.sh("readlink", "/usr/local/bin/k3snode").stdout.strip() == (
                "/opt/k3snode/bin/k3snode"
            )
            shown = m.sh(*SHELL, input="k3snode --version\n").stdout
            assert shown.strip().endswith(version())
            assert m.show("k3snode.service", "ActiveState")["ActiveState"] == "active"
            assert m.sh("systemctl", "is-enabled", "k3snode.service").stdout.strip() == "enabled"
            env = m.read("/etc/k3snode/k3snode.env")
            assert "K3SNODE_ROLE=agent\n" in env and "K3S_URL=https://my-server:6443\n" in env
            assert m.sh("systemctl", "reload", "k3snode.service", check=False).returncode == 0
