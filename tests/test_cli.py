"""The ``k3snode`` command as a user runs it: a real process, real files under a temporary root."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import clean_env, run_k3snode

from k3snode import __version__, cli


def _args(root, *extra: str, paths: bool = True) -> list[str]:
    """Settings file and (``paths``: for commands that write) k3snode's paths under ``root``."""
    where = [
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(root / "etc/rancher/k3s/config.yaml"),
    ]
    return ["--config", str(root / "etc/k3snode/config.toml"), *(where if paths else []), *extra]


@pytest.fixture
def settings_file(root):
    path = root / "etc/k3snode/config.toml"
    path.write_text('[node]\nrole = "server"\nmesh = "wireguard-native"\n')
    return path


def test_version():
    r = run_k3snode("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"k3snode {__version__}"


def test_python_dash_m_and_help_list_every_command():
    r = run_k3snode("--help")
    assert r.returncode == 0
    for cmd in ("detect", "render", "apply", "check"):
        assert cmd in r.stdout


def test_detect_json_static_shape(root, settings_file):
    r = run_k3snode(
        "detect",
        "--json",
        *_args(
            root,
            "--external-ip",
            "2600:1F18:0000::0005",
            "--external-ip",
            "203.0.113.5",
            paths=False,
        ),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {
        "provider": None,
        "source": "static",
        "public_ipv4": "203.0.113.5",
        "public_ipv6": "2600:1f18::5",
        "private_ipv4": None,
    }


def test_detect_text_says_where_addresses_came_from(root, settings_file):
    r = run_k3snode("detect", *_args(root, "--external-ip", "203.0.113.5", paths=False))
    assert r.returncode == 0
    assert "203.0.113.5 (static)" in r.stdout


def test_render_prints_yaml_and_writes_nothing(root, settings_file):
    r = run_k3snode("render", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout) == {
        "node-external-ip": ["203.0.113.5"],
        "flannel-backend": "wireguard-native",
        "flannel-external-ip": True,
    }
    assert not (root / "etc/rancher/k3s/config.yaml").exists()
    assert os.listdir(root / "var/lib/k3snode") == []


def test_render_redacts_inline_secrets_the_user_wrote(root, settings_file):
    k3s = root / "etc/rancher/k3s/config.yaml"
    k3s.write_text("token: SuperSecret123\nnode-label:\n  - a=b\n")
    r = run_k3snode("render", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 0, r.stderr
    assert "SuperSecret123" not in r.stdout + r.stderr
    assert "node-label" in r.stdout
    assert k3s.read_text() == "token: SuperSecret123\nnode-label:\n  - a=b\n"


def test_apply_writes_then_reports_unchanged_and_keeps_mtime(root, settings_file):
    k3s = root / "etc/rancher/k3s/config.yaml"
    r = run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"written {k3s}: added ")
    assert stat.S_IMODE(k3s.stat().st_mode) == 0o600
    mtime = k3s.stat().st_mtime_ns
    r = run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 0 and r.stdout.strip() == f"unchanged: {k3s}"
    assert k3s.stat().st_mtime_ns == mtime


def test_apply_dry_run_says_what_would_change(root, settings_file):
    k3s = root / "etc/rancher/k3s/config.yaml"
    run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    before = k3s.read_bytes()
    r = run_k3snode("apply", "--dry-run", *_args(root, "--external-ip", "198.51.100.9"))
    assert r.returncode == 0
    assert r.stdout.strip() == f"would write {k3s}: changed node-external-ip"
    assert k3s.read_bytes() == before


def test_switching_mesh_removes_keys_k3snode_no_longer_needs(root, settings_file):
    k3s = root / "etc/rancher/k3s/config.yaml"
    k3s.write_text("# mine\nwrite-kubeconfig-mode: '0644'\n")
    run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    assert yaml.safe_load(k3s.read_text())["flannel-backend"] == "wireguard-native"
    r = run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5", "--mesh", "none"))
    assert r.returncode == 0, r.stderr
    assert "removed flannel-backend, flannel-external-ip" in r.stdout
    text = k3s.read_text()
    assert text.startswith("# mine\n")
    assert yaml.safe_load(text) == {
        "write-kubeconfig-mode": "0644",
        "node-external-ip": ["203.0.113.5"],
    }


def test_agent_from_installer_environment(root):
    """The K3s installer's variables, as a cloud-init one-liner sets them."""
    token = "K10abc::server:s3cr3t-token-value"
    env = clean_env(K3S_URL="https://10.0.0.1:6443", K3S_TOKEN=token)
    (root / "etc/k3snode/config.toml").write_text("")
    r = run_k3snode(
        "apply",
        "--config",
        str(root / "etc/k3snode/config.toml"),
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(root / "etc/rancher/k3s/config.yaml"),
        "--external-ip",
        "203.0.113.7",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert token not in r.stdout + r.stderr
    cfg = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert cfg["server"] == "https://10.0.0.1:6443"
    assert cfg["node-external-ip"] == ["203.0.113.7"]
    assert "token" not in cfg and "flannel-backend" not in cfg  # agents never get server keys
    token_file = cfg["token-file"]
    assert token_file.startswith(str(root / "var/lib/k3snode"))
    assert Path(token_file).read_text().strip() == token
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token not in (root / "etc/rancher/k3s/config.yaml").read_text()


def test_settings_error_is_one_line_exit_2_nothing_written(root):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text('[k3s]\nserver = "k3s.example.com"\n')
    r = run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert str(cfg) in r.stderr and "[k3s] server" in r.stderr and "k3s.example.com" in r.stderr
    assert not (root / "etc/rancher/k3s/config.yaml").exists()


def test_missing_named_settings_file_is_an_error(root):
    r = run_k3snode("render", "--config", str(root / "nope.toml"), "--external-ip", "203.0.113.5")
    assert r.returncode == 2 and "nope.toml" in r.stderr and "Traceback" not in r.stderr


def test_broken_existing_k3s_config_is_left_untouched(root, settings_file):
    k3s = root / "etc/rancher/k3s/config.yaml"
    k3s.write_text("node-label: [unclosed\n")
    r = run_k3snode("apply", *_args(root, "--external-ip", "203.0.113.5"))
    assert r.returncode == 2 and str(k3s) in r.stderr and "Traceback" not in r.stderr
    assert k3s.read_text() == "node-label: [unclosed\n"


def test_unknown_option_is_usage_error():
    r = run_k3snode("render", "--no-such-flag")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr


def test_permission_denied_as_non_root_says_to_run_as_root(tmp_path):
    """A root-only settings file read by an unprivileged user: one line, and what to do."""
    import shutil
    import subprocess

    from helpers import REPO

    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root, setpriv and /usr/bin/python3")
    parts = os.path.abspath(REPO).split(os.sep)
    dirs = [os.sep + os.path.join(*parts[1:i]) for i in range(2, len(parts) + 1)]
    if not all(os.stat(d).st_mode & 0o005 == 0o005 for d in dirs):
        pytest.skip(f"{REPO} is not readable by an unprivileged user")
    secret = tmp_path / "private"
    secret.mkdir(mode=0o700)
    (secret / "config.toml").write_text('[node]\nrole = "server"\n')
    os.chmod(tmp_path, 0o755)
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "env", f"PYTHONPATH={REPO}", "/usr/bin/python3", "-m", "k3snode",
         "render", "--config", str(secret / "config.toml")],
        capture_output=True, text=True, cwd="/", timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "permission denied" in r.stderr
    assert r.stderr.rstrip().endswith("run it as root (sudo k3snode render)")


@pytest.mark.parametrize("columns", ["", "57", "x", "-3", "200"])
def test_terminal_width_is_shutils(monkeypatch, columns):
    """The width help is wrapped to: the same as shutil's answer (without importing shutil)."""
    monkeypatch.setenv("COLUMNS", columns)
    assert cli.terminal_width() == shutil.get_terminal_size().columns


def test_the_executable_leaves_nothing_unsaid(tmp_path):
    """``entry()`` ends with os._exit (no module teardown): what was printed and logged still
    arrives in full — to a file and to a pipe — and the exit code is the command's."""
    env = {
        k: v for k, v in clean_env().items() if k != "PYTHONUNBUFFERED"
    }  # buffered, as on a node
    out = tmp_path / "out.json"
    with open(out, "w") as f:
        r = subprocess.run([sys.executable, "-m", "k3snode", "detect", "--json",
                            "--external-ip", "203.0.113.7", "--provider", "none"],
                           stdout=f, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["public_ipv4"] == "203.0.113.7"
    r = run_k3snode("detect", "--external-ip", "10.0.0.1", "--provider", "none", "-v", env=env)
    assert r.returncode == 0 and "10.0.0.1" in r.stdout  # a private static address: warned
    assert "not a public" in r.stderr or "private" in r.stderr, r.stderr
    r = run_k3snode("detect", "--external-ip", "nope")
    assert r.returncode == 2 and r.stderr.startswith("k3snode: error: --external-ip"), r.stderr
    r = run_k3snode("--version")
    assert r.returncode == 0 and r.stdout == f"k3snode {__version__}\n"
    r = subprocess.run(f"{sys.executable} -m k3snode --help | head -1", shell=True,
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.stdout.startswith("usage: k3snode") and "Traceback" not in r.stderr
