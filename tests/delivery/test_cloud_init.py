"""packaging/cloud-init/*.yaml: valid for cloud-init, valid for k3snode, and consistent.

- ``oneline-<kind>.yaml``: ``#cloud-config`` and one runcmd line piping the installer (its default
  URL) into ``sh -`` with K3s's variables.
- ``<kind>.yaml`` (apt) and ``<kind>-dnf.yaml``: the settings and 0600 secrets as files,
  ``package_update``, and steps that stop at the first failure (``set -e``); the package is checked
  against the release's SHA256SUMS; the installer, the settings and the started K3s unit agree on
  the role.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from helpers import REPO

from k3snode.config import load as config_load

DIR = os.path.join(REPO, "packaging", "cloud-init")
EXAMPLES = sorted(glob.glob(os.path.join(DIR, "*.yaml")))
NAMES = [os.path.basename(p) for p in EXAMPLES]
KINDS = ("server-first", "server-join", "agent", "agent-tailscale")
ONELINERS = [os.path.join(DIR, f"oneline-{k}.yaml") for k in KINDS]
LONG = [os.path.join(DIR, f"{k}{s}.yaml") for k in KINDS for s in ("", "-dnf")]


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def installer_default_url() -> str:
    with open(os.path.join(REPO, "install.sh"), encoding="utf-8") as f:
        m = re.search(r"^RELEASE_URL=\$\{INSTALL_K3SNODE_RELEASE_URL:-(\S+)\}$", f.read(), re.M)
    assert m
    return m.group(1)


def test_every_kind_is_there_three_ways():
    assert set(NAMES) == {os.path.basename(p) for p in ONELINERS + LONG}


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init not installed")
@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_cloud_init_schema_accepts_it(path):
    out = subprocess.run(["cloud-init", "schema", "-c", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Valid cloud-config: {path}" in out.stdout


@pytest.mark.skipif(not shutil.which("cloud-init"), reason="cloud-init not installed")
def test_schema_check_rejects_a_broken_example(tmp_path):
    """The check above can fail: a mistyped key inside write_files is an error."""
    with open(os.path.join(DIR, "agent.yaml"), encoding="utf-8") as f:
        text = f.read().replace("permissions:", "permisions:", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = subprocess.run(["cloud-init", "schema", "-c", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "permisions" in out.stdout + out.stderr


@pytest.mark.parametrize("path", ONELINERS, ids=os.path.basename)
def test_one_liner_is_one_line_piping_the_installer(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    assert lines[:2] == ["#cloud-config", "runcmd:"] and len(lines) == 3, text
    data = yaml.safe_load(text)
    assert list(data) == ["runcmd"] and len(data["runcmd"]) == 1
    fetch, _, run = data["runcmd"][0].partition(" | ")
    assert fetch == f"curl -sfL {installer_default_url()}/latest/download/install.sh"
    words = shlex.split(run)
    assert words[-2:] == ["sh", "-"]
    env = dict(w.split("=", 1) for w in words[:-2])
    kind = os.path.basename(path)[len("oneline-") : -len(".yaml")]
    assert env["K3S_TOKEN"] and env["INSTALL_K3SNODE_K3S"] == "true"
    # The installer's role rule (agent with K3S_URL, else server) or an explicit one.
    role = env.get("K3SNODE_ROLE") or ("agent" if "K3S_URL" in env else "server")
    assert role == ("agent" if kind.startswith("agent") else "server")
    if kind == "server-first":
        assert "K3S_URL" not in env and env["K3SNODE_K3S_CLUSTER_INIT"] == "true"
    else:
        assert env["K3S_URL"].startswith("https://") and env["K3S_URL"].endswith(":6443")
    if kind == "agent-tailscale":
        assert env["K3SNODE_MESH"] == "tailscale" and env["K3SNODE_TAILSCALE_AUTH_KEY"]


@pytest.mark.parametrize("path", LONG, ids=os.path.basename)
def test_long_example_settings_match_installer_and_unit(path, tmp_path):
    data = load(path)
    assert data["package_update"] is True
    files = {f["path"]: f for f in data["write_files"]}
    conf = tmp_path / "config.toml"
    conf.write_text(files["/etc/k3snode/config.toml"]["content"])
    s = config_load.load(str(conf), env={})
    runcmd = data["runcmd"]
    assert runcmd[0] == "set -e"  # stops at the first failed step
    k3s = next(c for c in runcmd if "get.k3s.io" in c)
    assert "INSTALL_K3S_SKIP_START=true" in k3s  # k3snode writes the config first
    assert f"INSTALL_K3S_EXEC={s.role} " in k3s
    assert "| sh" not in k3s  # a failed download fails the step
    assert runcmd[-1] == f"systemctl enable --now --no-block k3snode.service {s.k3s.unit}.service"
    install = next(c for c in runcmd if "k3snode" in c and "SHA256SUMS" in c)
    base = f"{installer_default_url()}/download/v"
    assert install.count(base) == 2
    package = re.search(r"grep ' (\S+)\$' SHA256SUMS \| sha256sum -c - && ", install).group(1)
    if path.endswith("-dnf.yaml"):
        assert package.endswith(".noarch.rpm") and f"dnf install -y ./{package}" in install
    else:
        assert package.endswith("_all.deb") and "--force-confold" in install  # settings stay
        assert f"apt-get install -y -o Dpkg::Options::=--force-confold ./{package}" in install
    # Every secret the settings point at is written by the same user-data, 0600.
    for secret in filter(None, (s.k3s.token_file, s.tailscale.auth_key_file)):
        assert files[secret]["permissions"] == "0600", secret
    assert s.k3s.token_file, "every example joins or seeds a cluster with a token file"


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_each_step_is_one_line(path):
    for cmd in load(path)["runcmd"]:
        assert isinstance(cmd, str) and "\n" not in cmd
