"""install.sh, k3snode-uninstall.sh and scripts/release.sh as files: POSIX sh, shellcheck-clean,
the variables the installer's header documents are the ones it reads, its default URLs are the
release layout the README and the cloud-init one-liners use, and it refuses to run as a user."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from helpers import REPO, is_root

SCRIPTS = ["install.sh", "k3snode-uninstall.sh", "scripts/release.sh", "tests/stubs/k3s-install.sh"]


def read(path: str) -> str:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_clean(script):
    out = subprocess.run(
        ["shellcheck", "--shell=sh", os.path.join(REPO, script)], capture_output=True, text=True
    )
    assert out.returncode == 0 and not out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("shell", ["dash", "busybox"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_parses_as_posix_sh(script, shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    cmd = [shell, "sh", "-n"] if shell == "busybox" else [shell, "-n"]
    out = subprocess.run([*cmd, os.path.join(REPO, script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert read(script).startswith("#!/bin/sh\n")


def test_header_documents_exactly_the_variables_it_reads():
    text = read("install.sh")
    header = text.split("\nset -eu\n", 1)[0]
    body = text.split("\nset -eu\n", 1)[1]
    pattern = r"\b((?:INSTALL_K3SNODE|K3SNODE|K3S)_[A-Z0-9_]*[A-Z0-9])\b"
    documented = set(re.findall(pattern, header))
    # Read by the script: ${VAR...}; K3SNODE_K3S_CLUSTER_INIT and the like pass to configure too.
    read_vars = set(re.findall(r"\$\{((?:INSTALL_K3SNODE|K3SNODE|K3S)_[A-Z0-9_]*[A-Z0-9])", body))
    assert read_vars <= documented, read_vars - documented
    assert documented - {"INSTALL_K3S_SKIP_START", "INSTALL_K3S_EXEC"} <= read_vars, (
        documented - read_vars
    )


def test_default_urls_are_the_release_layout():
    text = read("install.sh")
    base = re.search(r"^RELEASE_URL=\$\{INSTALL_K3SNODE_RELEASE_URL:-(\S+)\}$", text, re.M)[1]
    assert base == "https://github.com/k3snode/k3snode/releases"
    assert "BASE=$RELEASE_URL/latest/download\n" in text
    assert "BASE=$RELEASE_URL/download/v${INSTALL_K3SNODE_VERSION#v}\n" in text
    assert re.search(
        r"^K3S_INSTALL_URL=\$\{INSTALL_K3SNODE_K3S_INSTALL_URL:-https://get\.k3s\.io\}$", text, re.M
    )
    readme = read("README.md")
    section = readme.split("## Install and run\n", 1)[1].split("\n## ", 1)[0]
    one_liner = section.split("```sh\n", 1)[1].split("\n", 1)[0]
    assert one_liner.startswith(f"curl -sfL {base}/latest/download/install.sh | ")
    assert one_liner.endswith(" sh -") and "K3S_URL=https://" in one_liner
    assert f"{base}/download/v<v>/" in read("scripts/release.sh")


def test_the_release_set_carries_what_the_installer_fetches():
    release = read("scripts/release.sh")
    install = read("install.sh")
    for name in ("k3snode-uninstall.sh", "k3snode.service", "SHA256SUMS"):
        assert name in release and name in install
    # The names release.sh documents, for this version; each of install.sh's patterns picks one.
    v = re.search(r'^version = "(.*)"$', read("pyproject.toml"), re.M)[1]
    names = [
        n.replace("<v>", v)
        for n in re.findall(r"^#   (k3snode\S+)", release, re.M)
        + re.findall(r"^#   \S+, (k3snode\S+)", release, re.M)
    ]
    patterns = re.findall(r"pick '([^']+)'", install)
    assert len(patterns) == 3
    for pattern in patterns:
        assert len([n for n in names if re.search(pattern, n)]) == 1, (pattern, names)


@pytest.mark.skipif(is_root() and not shutil.which("setpriv"), reason="needs setpriv as root")
def test_refuses_to_run_as_a_user():
    cmd = ["sh", os.path.join(REPO, "install.sh")]
    if is_root():
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert out.returncode == 2
    assert out.stderr.startswith("[ERROR]  must run as root") and len(out.stderr.splitlines()) == 1
    assert out.stdout == ""
