"""packaging/cloud-init/*.yaml: valid for cloud-init, valid for k3snode, and consistent — the
installer, the settings and the started K3s unit agree on the role; secrets are 0600 files."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest
import yaml
from helpers import REPO

from k3snode import settings

EXAMPLES = sorted(glob.glob(os.path.join(REPO, "packaging", "cloud-init", "*.yaml")))
NAMES = [os.path.basename(p) for p in EXAMPLES]


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_the_three_roles_are_there():
    assert {"server-first.yaml", "server-join.yaml", "agent.yaml"} <= set(NAMES)


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init not installed")
@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_cloud_init_schema_accepts_it(path):
    out = subprocess.run(["cloud-init", "schema", "-c", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Valid cloud-config: {path}" in out.stdout


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init not installed")
def test_schema_check_rejects_a_broken_example(tmp_path):
    """The check above can fail: a mistyped key inside write_files is an error."""
    with open(EXAMPLES[0], encoding="utf-8") as f:
        text = f.read().replace("permissions:", "permisions:", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = subprocess.run(["cloud-init", "schema", "-c", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "permisions" in out.stdout + out.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_settings_are_valid_and_match_installer_and_unit(path, tmp_path):
    data = load(path)
    files = {f["path"]: f for f in data["write_files"]}
    conf = tmp_path / "config.toml"
    conf.write_text(files["/etc/k3snode/config.toml"]["content"])
    s = settings.load(str(conf), env={})
    runcmd = data["runcmd"]
    installer = next(c for c in runcmd if "get.k3s.io" in c)
    assert "INSTALL_K3S_SKIP_START=true" in installer  # k3snode writes the config first
    assert f"INSTALL_K3S_EXEC={s.role} " in installer
    assert runcmd[-1] == f"systemctl enable --now --no-block k3snode.service {s.k3s.unit}.service"
    install = next(c for c in runcmd if "k3snode.deb" in c)
    assert "--force-confold" in install  # the settings written above stay
    # Every secret the settings point at is written by the same user-data, 0600.
    for secret in filter(None, (s.k3s.token_file, s.tailscale.auth_key_file)):
        assert files[secret]["permissions"] == "0600", secret
    assert s.k3s.token_file, "every example joins or seeds a cluster with a token file"


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_each_step_is_one_line(path):
    for cmd in load(path)["runcmd"]:
        assert isinstance(cmd, str) and "\n" not in cmd
