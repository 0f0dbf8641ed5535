"""packaging/packer/: the documented image build is valid for Packer and uses prepare-image."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import REPO

HERE = os.path.join(REPO, "packaging", "packer")
pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not shutil.which("packer"), reason="packer not installed"),
]


def packer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["packer", *args],
        cwd=HERE,
        capture_output=True,
        text=True,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        timeout=120,
    )


def test_packer_validate_and_fmt():
    dummy = "sha512:" + "0" * 128  # full validation without downloading the checksum file
    out = packer(
        "validate",
        "-var",
        "k3snode_deb_url=https://example.invalid/k3snode.deb",
        "-var",
        f"iso_checksum={dummy}",
        ".",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert packer("fmt", "-check", ".").returncode == 0


def test_validate_catches_a_missing_variable():
    out = packer("validate", ".")
    assert out.returncode != 0 and "k3snode_deb_url" in out.stdout + out.stderr


def test_image_is_cleaned_with_prepare_image_after_stopping_services():
    with open(os.path.join(HERE, "k3snode.pkr.hcl"), encoding="utf-8") as f:
        text = f.read()
    stop = text.index("systemctl stop k3snode k3s k3s-agent")
    prep = text.index('"k3snode prepare-image --k3s"')
    assert stop < prep < text.index("truncate -s 0 /etc/machine-id")
    assert "INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true" in text


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init not installed")
def test_build_vm_seed_is_valid_cloud_config():
    seed = os.path.join(HERE, "seed", "user-data")
    out = subprocess.run(["cloud-init", "schema", "-c", seed], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
