"""install.sh refuses bad input before it changes anything: one line on stderr, a non-zero exit
(2 for a mistake in what it was given, 1 for a failed download or checksum), and the tree exactly
as it was. Run in a fresh Debian tree under systemd-nspawn (not booted; no network), with the
release set beside the installer (the way ``sudo ./install.sh`` runs from a downloaded release)."""

from __future__ import annotations

import os
import shutil

import pytest
from debian_tree import CLOUD_PACKAGES, have_tools, rootfs, run_in
from internet import release_set

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "rpmbuild"),
        reason="needs systemd-container, mmdebstrap and the packaging tools",
    ),
]

SECRET = "K10-not-to-be-printed-7f3a9c"
SKIP = ("proc", "sys", "dev", "run", "tmp")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> str:
    root = rootfs(str(tmp_path_factory.mktemp("input") / "root"), "cloud", CLOUD_PACKAGES)
    shutil.copytree(release_set(), os.path.join(root, "srv/release"))
    bad = os.path.join(root, "srv/tampered")
    shutil.copytree(release_set(), bad)
    deb = next(f for f in os.listdir(bad) if f.endswith(".deb"))
    with open(os.path.join(bad, deb), "ab") as f:
        f.write(b"\0")
    run_in(root, "true")  # whatever nspawn itself sets up in a tree, before the first snapshot
    return root


def snapshot(root: str) -> dict[str, tuple]:
    out = {}
    for top, dirs, files in os.walk(root):
        if top == root:
            dirs[:] = [d for d in dirs if d not in SKIP]
        for name in dirs + files:
            p = os.path.join(top, name)
            st = os.lstat(p)
            out[p[len(root) :]] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


CASES = {
    "unknown role": (["K3SNODE_ROLE=master"], 2, ["K3SNODE_ROLE", "'master'"]),
    "unknown mesh": (["K3SNODE_MESH=wireguard"], 2, ["K3SNODE_MESH", "'wireguard'"]),
    "http server URL": (
        ["K3S_URL=http://10.0.0.1:6443", f"K3S_TOKEN={SECRET}"],
        2,
        ["K3S_URL", "https://", "'http://10.0.0.1:6443'"],
    ),
    "unreadable token file": (
        ["K3S_URL=https://10.0.0.1:6443", "K3S_TOKEN_FILE=/etc/k3snode/missing-token"],
        2,
        ["K3S_TOKEN_FILE", "/etc/k3snode/missing-token"],
    ),
    "server URL without token": (["K3S_URL=https://10.0.0.1:6443"], 2, ["K3S_TOKEN"]),
    "agent without server URL": (["K3SNODE_ROLE=agent", f"K3S_TOKEN={SECRET}"], 2, ["K3S_URL"]),
    "unknown method": (["INSTALL_K3SNODE_METHOD=snap"], 2, ["INSTALL_K3SNODE_METHOD", "'snap'"]),
    "not a boolean": (["INSTALL_K3SNODE_SKIP_START=yes"], 2, ["INSTALL_K3SNODE_SKIP_START"]),
}


def check(tree: str, cmd: list[str], status: int, words: list[str]) -> None:
    before = snapshot(tree)
    out = run_in(tree, *cmd, check=False, timeout=120)
    assert out.returncode == status, out.stdout + out.stderr
    # (nspawn's own complaint about its propagation directory is not the installer's output)
    lines = [x for x in out.stderr.splitlines() if not x.startswith("Attempted to remove disk")]
    assert len(lines) == 1 and lines[0].startswith("[ERROR]  "), out.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert SECRET not in out.stdout + out.stderr
    after = snapshot(tree)
    assert after == before, {
        k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
    }


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_changes_nothing(tree, case):
    env, status, words = CASES[case]
    check(tree, ["env", *env, "sh", "/srv/release/install.sh"], status, words)


def test_a_checksum_mismatch_installs_nothing(tree):
    env = ["K3S_URL=https://10.0.0.1:6443", f"K3S_TOKEN={SECRET}"]
    check(tree, ["env", *env, "sh", "/srv/tampered/install.sh"], 1, ["SHA-256 mismatch", ".deb"])


def test_a_failed_download_installs_nothing(tree):
    """Piped (`curl … | sh -`), from a release URL that does not answer."""
    env = ["INSTALL_K3SNODE_RELEASE_URL=http://127.0.0.1:9/releases", f"K3S_TOKEN={SECRET}"]
    cmd = ["sh", "-c", f"env {' '.join(env)} sh - < /srv/release/install.sh"]
    check(tree, cmd, 1, ["download failed", "http://127.0.0.1:9/releases/latest/download"])


def test_arguments_are_refused(tree):
    check(tree, ["sh", "/srv/release/install.sh", "--role", "agent"], 2, ["no arguments"])


def test_not_root(tree):
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    check(tree, [*cmd, "sh", "/srv/release/install.sh"], 2, ["root"])
