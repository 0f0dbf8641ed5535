"""``k3snode prepare-image``, run as a real process: on this machine with every path in a temporary
tree (after a real ``k3snode apply``), and on an "image" mounted at ``--root``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import clean_env, run_k3snode


def tree(tmp_path, state_name: str = "k3snode"):
    """Settings that put every path k3snode uses under ``tmp_path``."""
    state = tmp_path / "var/lib" / state_name
    conf = tmp_path / "etc/k3snode/config.toml"
    conf.parent.mkdir(parents=True)
    (tmp_path / "etc/k3snode/token").write_text("cluster-secret\n")
    (tmp_path / "etc/rancher/k3s").mkdir(parents=True)
    (tmp_path / "etc/rancher/k3s/config.yaml").write_text("# mine\nnode-label: [a=b]\n")
    conf.write_text(
        f'[node]\nmesh = "none"\n[k3s]\nconfig = "{tmp_path}/etc/rancher/k3s/config.yaml"\n'
        f'token_file = "{tmp_path}/etc/k3snode/token"\n'
        f'[paths]\nstate_dir = "{state}"\nrun_dir = "{tmp_path}/run/k3snode"\n'
        f'[underlay]\nprivate_key_file = "{state}/underlay.key"\n'
    )
    return conf


def apply(conf) -> None:
    out = run_k3snode(
        "apply",
        "--config",
        str(conf),
        "--provider",
        "none",
        "--external-ip",
        "16.16.16.16",
        "--node-name",
        "builder",
        "--no-restart",
    )
    assert out.returncode == 0, out.stderr


def test_after_apply_removes_state_and_k3snodes_keys_keeps_settings_and_user_keys(tmp_path):
    conf = tree(tmp_path)
    apply(conf)
    state = tmp_path / "var/lib/k3snode"
    (state / "underlay.key").write_text("private\n")
    (tmp_path / "run/k3snode").mkdir(parents=True)
    (tmp_path / "run/k3snode/status.json").write_text(json.dumps({"pid": 999999999}))
    k3s_conf = tmp_path / "etc/rancher/k3s/config.yaml"
    assert "16.16.16.16" in k3s_conf.read_text()

    out = run_k3snode("prepare-image", "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(state)) == [] and state.is_dir()
    assert os.listdir(tmp_path / "run/k3snode") == []
    data = yaml.safe_load(k3s_conf.read_text())
    assert data == {"node-label": ["a=b"]}, data  # builder's address and name gone, user's key kept
    assert k3s_conf.read_text().startswith("# mine\n")
    assert conf.exists() and (tmp_path / "etc/k3snode/token").read_text() == "cluster-secret\n"
    assert f"removed {state}/state.json" in out.stdout
    assert f"removed {state}/underlay.key" in out.stdout
    assert f"took k3snode's keys out of {k3s_conf}" in out.stdout
    assert f"kept {conf} (settings)" in out.stdout
    # apply saved --node-name in k3snode.env: the builder's name, not the clones'.
    assert "builder" not in (tmp_path / "etc/k3snode/k3snode.env").read_text()
    # Running it again finds nothing to do and changes nothing.
    again = run_k3snode("prepare-image", "--config", str(conf))
    assert again.returncode == 0 and "no per-node k3snode state found" in again.stdout


def test_dry_run_removes_nothing(tmp_path):
    conf = tree(tmp_path)
    apply(conf)
    before = (tmp_path / "etc/rancher/k3s/config.yaml").read_text()
    out = run_k3snode("prepare-image", "--config", str(conf), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"would remove {tmp_path}/var/lib/k3snode/state.json" in out.stdout
    assert (tmp_path / "var/lib/k3snode/state.json").exists()
    assert (tmp_path / "etc/rancher/k3s/config.yaml").read_text() == before


def test_a_state_dir_not_named_k3snode_loses_only_k3snodes_files(tmp_path):
    conf = tree(tmp_path, state_name="shared")
    apply(conf)
    (tmp_path / "var/lib/shared/someone-elses.db").write_text("x")
    out = run_k3snode("prepare-image", "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert os.listdir(tmp_path / "var/lib/shared") == ["someone-elses.db"]


def test_refuses_while_the_daemon_runs(tmp_path):
    conf = tree(tmp_path)
    apply(conf)
    (tmp_path / "run/k3snode").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = tmp_path / "run/k3snode/status.json"
        status.write_text(json.dumps({"pid": sleeper.pid, "ready": True}))
        out = run_k3snode("prepare-image", "--config", str(conf))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert out.returncode == 1
    assert f"k3snode is running (pid {sleeper.pid})" in out.stderr
    assert "nothing removed" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "var/lib/k3snode/state.json").exists() and status.exists()


def image(tmp_path):
    """A mounted image: paths inside are the image's own absolute paths."""
    r = tmp_path / "img"
    for d in (
        "etc/k3snode",
        "etc/rancher/k3s",
        "etc/rancher/node",
        "var/lib/k3snode",
        "var/lib/rancher/k3s/server/db",
        "var/lib/rancher/k3s/agent/images",
        "var/lib/rancher/k3s/agent/etc",
        "var/lib/tailscale",
        "run/k3snode",
    ):
        (r / d).mkdir(parents=True)
    (r / "etc/k3snode/config.toml").write_text('[node]\nmesh = "none"\n')
    (r / "etc/rancher/k3s/config.yaml").write_text(
        "write-kubeconfig-mode: '0640'\nnode-external-ip:\n- 16.16.16.16\n"
    )
    (r / "var/lib/k3snode/state.json").write_text(
        json.dumps(
            {
                "version": 1,
                "managed": {"/etc/rancher/k3s/config.yaml": ["node-external-ip"]},
                "last_good": {},
            }
        )
    )
    (r / "var/lib/k3snode/token").write_text("copy\n")
    (r / "var/lib/rancher/k3s/server/db/state.db").write_text("etcd")
    (r / "var/lib/rancher/k3s/agent/images/airgap.tar").write_text("images")
    (r / "var/lib/rancher/k3s/agent/client-kubelet.crt").write_text("cert")
    (r / "etc/rancher/node/password").write_text("node-password")
    (r / "etc/rancher/k3s/k3s.yaml").write_text("kubeconfig")
    (r / "var/lib/tailscale/tailscaled.state").write_text("{}")
    (r / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return r


def test_root_mode_works_inside_the_image_and_lists_what_else_to_clean(tmp_path):
    r = image(tmp_path)
    env = clean_env(K3SNODE_NODE_MESH="tailscale")  # this machine's environment is not the image's
    out = run_k3snode("prepare-image", "--root", str(r), env=env)
    assert out.returncode == 0, out.stderr
    assert os.listdir(r / "var/lib/k3snode") == []
    assert yaml.safe_load((r / "etc/rancher/k3s/config.yaml").read_text()) == {
        "write-kubeconfig-mode": "0640"
    }
    # K3s's data is not touched without --k3s; what else needs cleaning is printed.
    assert (r / "var/lib/rancher/k3s/server/db/state.db").exists()
    assert (r / "etc/rancher/node/password").exists()
    for path in (
        "etc/machine-id",
        "etc/rancher/node/password",
        "var/lib/tailscale/tailscaled.state",
        "var/lib/rancher/k3s/server",
    ):
        assert f"  {r}/{path}: " in out.stdout, path
    assert "machine-id" in out.stdout and "truncate -s 0 /etc/machine-id" in out.stdout
    assert (r / "etc/machine-id").read_text().startswith("0123")  # printed, never done


def test_k3s_flag_removes_k3s_node_state_but_keeps_airgap_images_and_config(tmp_path):
    r = image(tmp_path)
    out = run_k3snode("prepare-image", "--root", str(r), "--k3s")
    assert out.returncode == 0, out.stderr
    k3s = r / "var/lib/rancher/k3s"
    assert not (k3s / "server").exists()
    assert sorted(os.listdir(k3s / "agent")) == ["images"]
    assert (k3s / "agent/images/airgap.tar").read_text() == "images"
    assert not (r / "etc/rancher/node/password").exists()
    assert not (r / "etc/rancher/k3s/k3s.yaml").exists()
    assert (r / "etc/rancher/k3s/config.yaml").exists()
    assert "/etc/rancher/node/password:" not in out.stdout  # done, so not listed as to do
    assert (r / "var/lib/tailscale/tailscaled.state").exists()


def test_k3s_data_dir_from_k3s_config(tmp_path):
    r = image(tmp_path)
    (r / "etc/rancher/k3s/config.yaml").write_text("data-dir: /srv/k3s\n")
    (r / "srv/k3s/server").mkdir(parents=True)
    out = run_k3snode("prepare-image", "--root", str(r), "--k3s")
    assert out.returncode == 0, out.stderr
    assert not (r / "srv/k3s/server").exists()
    assert (r / "var/lib/rancher/k3s/server/db/state.db").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--root", "/nonexistent/k3snode-img"], "--root: not a directory"),
        (["--role", "agent"], "an agent needs a server URL"),
    ],
)
def test_mistakes_are_one_line_exit_2(tmp_path, args, message):
    conf = tree(tmp_path)
    apply(conf)
    out = run_k3snode("prepare-image", "--config", str(conf), *args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (tmp_path / "var/lib/k3snode/state.json").exists()


def test_a_token_stored_by_configure_stays_with_the_settings_that_name_it(tmp_path):
    conf = tree(tmp_path)
    text = conf.read_text().replace(f'token_file = "{tmp_path}/etc/k3snode/token"\n', "")
    conf.write_text(text)
    env = clean_env(K3S_URL="https://10.0.0.1:6443", K3S_TOKEN="K10clone-secret")
    out = run_k3snode("configure", "--config", str(conf), env=env)
    assert out.returncode == 0, out.stderr
    apply(conf)
    state = tmp_path / "var/lib/k3snode"
    out = run_k3snode("prepare-image", "--config", str(conf))
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(state)) == ["token"]
    assert (state / "token").read_text() == "K10clone-secret\n"
    assert f"kept {state}/token (settings)" in out.stdout
    render = run_k3snode("render", "--config", str(conf), "--external-ip", "16.16.16.16")
    assert render.returncode == 0 and f"token-file: {state}/token" in render.stdout
