"""scripts/release.sh: the release set is exactly the documented files, its SHA256SUMS checks, the
sdist and wheel pass `twine check`, the wheel installs into a fresh virtualenv and runs, and the
source tarball is a checkout install.sh can install from."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile

import pytest
from debian_tree import have_tools
from helpers import clean_env
from internet import release_set, version, wheels

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("dpkg-buildpackage", "rpmbuild"), reason="needs the packaging tools"
    ),
]


@pytest.fixture(scope="module")
def release() -> str:
    return release_set()


def test_the_documented_files_and_nothing_else(release):
    v = version()
    assert sorted(os.listdir(release)) == sorted(
        [
            f"k3snode-{v}.tar.gz",
            f"k3snode-{v}-py3-none-any.whl",
            f"k3snode_{v}_all.deb",
            f"k3snode-{v}-1.noarch.rpm",
            "install.sh",
            "k3snode-uninstall.sh",
            "k3snode.service",
            "SHA256SUMS",
        ]
    )
    assert os.access(os.path.join(release, "install.sh"), os.X_OK)


def test_sha256sums_lists_every_file_and_checks(release):
    out = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    with open(os.path.join(release, "SHA256SUMS")) as f:
        listed = sorted(line.split()[1] for line in f)
    assert listed == sorted(f for f in os.listdir(release) if f != "SHA256SUMS")


def test_twine_check_is_clean(release):
    dists = [os.path.join(release, f) for f in os.listdir(release) if f.endswith((".whl", ".gz"))]
    out = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *dists], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.count("PASSED") == 2, out.stdout + out.stderr


def test_wheel_installs_into_a_fresh_virtualenv_and_runs(release, tmp_path):
    wheel = os.path.join(release, f"k3snode-{version()}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "k3snode/data/k3s-flags.json" in z.namelist()
    env = {k: v for k, v in clean_env().items() if k != "PYTHONPATH"}  # not the checkout
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-index"]
    subprocess.run(
        [*pip, "--find-links", wheels(), wheel],
        check=True,
        timeout=300,
        env={**env, "PIP_CONFIG_FILE": os.devnull},
    )
    out = subprocess.run(
        [str(venv / "bin/k3snode"), "--version"], capture_output=True, text=True, env=env
    )
    assert out.stdout.strip() == f"k3snode {version()}", out.stderr
    settings = tmp_path / "config.toml"
    settings.write_text("")
    token = tmp_path / "token"
    token.write_text("t\n")
    token.chmod(0o600)
    rendered = subprocess.run(
        [
            *(str(venv / "bin/k3snode"), "render", "--config", str(settings), "--role", "agent"),
            *("--server", "https://10.1.2.3:6443", "--external-ip", "3.3.3.3"),
            *("--token-file", str(token), "--state-dir", str(tmp_path / "state")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert "server: https://10.1.2.3:6443" in rendered.stdout, rendered.stderr
    assert "node-external-ip" in rendered.stdout


def test_source_tarball_is_an_installable_checkout(release):
    v = version()
    with tarfile.open(os.path.join(release, f"k3snode-{v}.tar.gz")) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        mode = t.getmember(f"k3snode-{v}/install.sh").mode
    # What install.sh looks for to install from its own directory (a virtualenv).
    assert {"pyproject.toml", "k3snode/__init__.py", "systemd/k3snode.service"} <= names
    assert {"install.sh", "k3snode-uninstall.sh"} <= names
    assert mode & 0o111
