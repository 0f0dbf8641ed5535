"""The unit as the .deb installs it, checked by systemd-analyze against the installed tree: its
ExecStart and ExecReload programs exist there and Documentation= resolves to the package's own
man page."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from debian_tree import BOOT_PACKAGES, build_deb, have_tools, install_deb, rootfs
from helpers import REPO

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-analyze", "mmdebstrap", "dpkg-buildpackage", "systemd-nspawn"),
        reason="needs systemd, mmdebstrap and the packaging tools",
    ),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    root = rootfs(str(tmp_path_factory.mktemp("unit") / "root"), "boot", BOOT_PACKAGES)
    install_deb(root, build_deb())
    return root


def analyze(root: str, *args: str, unit: str = "k3snode.service") -> subprocess.CompletedProcess:
    env = {**os.environ, "MANPATH": os.path.join(root, "usr/share/man"), "SYSTEMD_COLORS": "0"}
    return subprocess.run(
        ["systemd-analyze", *args, f"--root={root}", unit],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )


def test_verify_in_the_installed_tree_is_silent(tree):
    assert os.path.exists(os.path.join(tree, "usr/share/man/man1/k3snode.1.gz"))
    out = analyze(tree, "verify")
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_wireguard_go_unit_verifies_in_the_installed_tree(tree):
    """The template k3snode starts for the underlay, with Debian's wireguard-go installed."""
    assert os.path.exists(os.path.join(tree, "lib/systemd/system/k3snode-wireguard-go@.service"))
    out = analyze(tree, "verify", unit="k3snode-wireguard-go@k3snode-ul.service")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    exe = os.path.join(tree, "usr/bin/wireguard-go")
    os.rename(exe, exe + ".away")
    try:
        out = analyze(tree, "verify", unit="k3snode-wireguard-go@k3snode-ul.service")
    finally:
        os.rename(exe + ".away", exe)
    assert out.returncode != 0 and "/usr/bin/wireguard-go" in out.stderr


def test_verify_fails_without_the_program(tree):
    """The check above can fail: without /usr/bin/k3snode, verify says so."""
    exe = os.path.join(tree, "usr/bin/k3snode")
    os.rename(exe, exe + ".away")
    try:
        out = analyze(tree, "verify")
    finally:
        os.rename(exe + ".away", exe)
    assert out.returncode != 0 and "/usr/bin/k3snode" in out.stderr


def test_installed_exposure_matches_the_documented_one(tree):
    out = analyze(tree, "security", "--offline=yes", "--no-pager")
    score = re.search(r"Overall exposure level for k3snode.service: ([0-9.]+)", out.stdout)
    assert out.returncode == 0 and score, out.stdout + out.stderr
    with open(os.path.join(REPO, "docs", "delivery.md"), encoding="utf-8") as f:
        documented = re.search(r"exposure\s+\*\*([0-9.]+)\*\*", f.read())
    assert documented and documented[1] == score[1]
