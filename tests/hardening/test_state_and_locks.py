"""Findings 6 and 10 (and the lock and state parts of 13): one write lock for ``apply`` and the
daemon, state.json opened without following links and type-checked, damage recovered from the
config's marker block, and a full or read-only file system reported in one line."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from helpers import run_k3snode, sh

from k3snode.k3s.configfile import MARKER


def _args(root, *extra: str) -> list[str]:
    return [
        "--config",
        "/dev/null",
        "--state-dir",
        str(root / "var/lib/k3snode"),
        "--k3s-config",
        str(root / "etc/rancher/k3s/config.yaml"),
        "--external-ip",
        "203.0.113.5",
        "--role",
        "server",
        *extra,
    ]


def _apply(root, *extra: str) -> subprocess.CompletedProcess:
    return run_k3snode("apply", "--no-restart", *_args(root, *extra))


def _below_marker(text: str) -> set[str]:
    lines = text.splitlines()
    if MARKER not in lines:
        return set()
    block = "\n".join(lines[lines.index(MARKER) + 1 :])
    return set(yaml.safe_load(block) or {})


def _state(root) -> dict:
    return json.loads((root / "var/lib/k3snode/state.json").read_text())


@pytest.mark.parametrize(
    "rounds", [6, pytest.param(25, marks=pytest.mark.slow)], ids=lambda n: f"{n}-rounds"
)
def test_concurrent_applies_never_orphan_managed_keys(root, rounds):
    """Two ``apply`` processes at once, again and again (the ``slow`` tier, in CI, 25 rounds)."""
    config = root / "etc/rancher/k3s/config.yaml"
    config.write_text("debug: true\n")
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            runs = [
                pool.submit(_apply, root, "--mesh", "wireguard-native"),
                pool.submit(_apply, root, "--mesh", "none"),
            ]
            for r in runs:
                out = r.result()
                assert out.returncode == 0, out.stderr
            managed = set(_state(root)["managed"][str(config)])
            below = _below_marker(config.read_text())
            assert below <= managed, f"keys in the file that state.json forgot: {below - managed}"
            assert yaml.safe_load(config.read_text())["debug"] is True


def test_a_held_write_lock_makes_apply_wait_then_say_so(root):
    state_dir = root / "var/lib/k3snode"
    fd = os.open(state_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started = time.monotonic()
        out = _apply(root, "--mesh", "none")
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "another k3snode is writing" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert waited >= 4, "it waited for the other writer a little"
    assert not (root / "etc/rancher/k3s/config.yaml").exists()
    assert _apply(root, "--mesh", "none").returncode == 0, "free again once released"


def test_run_lock_and_write_lock_are_never_followed_through_a_link(root, tmp_path_factory):
    target = tmp_path_factory.mktemp("elsewhere") / "victim"
    os.symlink(target, root / "var/lib/k3snode/write.lock")
    out = _apply(root, "--mesh", "none")
    assert out.returncode == 1 and "symbolic link" in out.stderr and "Traceback" not in out.stderr
    assert not target.exists()
    os.symlink(target, root / "run/k3snode/lock")
    out = run_k3snode(
        "run", *_args(root, "--mesh", "none", "--run-dir", str(root / "run/k3snode")), timeout=30
    )
    assert out.returncode == 2 and "symbolic link" in out.stderr, out.stderr
    assert not target.exists()


CORRUPT = {
    "garbage": b"{not json",
    "string-managed": None,  # filled in: managed maps the path to a string
    "list": b"[1, 2]",
    "deep": b"[" * 100000 + b"]" * 100000,
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_damaged_state_recovers_from_the_marker_block_with_one_warning(root, kind):
    config = root / "etc/rancher/k3s/config.yaml"
    assert _apply(root, "--mesh", "wireguard-native").returncode == 0
    assert "flannel-backend" in config.read_text()
    state = root / "var/lib/k3snode/state.json"
    raw = CORRUPT[kind]
    if raw is None:
        raw = json.dumps({"managed": {str(config): "flannel-backend"}}).encode()
    state.write_bytes(raw)
    out = _apply(root, "--mesh", "none")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(state) in warnings[0], out.stderr
    data = yaml.safe_load(config.read_text())
    assert "flannel-backend" not in data, "k3snode's old key was found in the marker block"
    assert data["node-external-ip"] == ["203.0.113.5"]
    assert _state(root)["managed"][str(config)] == ["node-external-ip"]


def test_state_that_is_a_symlink_is_not_followed(root, tmp_path_factory):
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.json"
    secret.write_text(json.dumps({"managed": {"/etc/shadow": ["root"]}}))
    state = root / "var/lib/k3snode/state.json"
    os.symlink(secret, state)
    out = _apply(root, "--mesh", "none")
    assert out.returncode == 0 and "symbolic link" in out.stderr, out.stderr
    assert not os.path.islink(state), "replaced by k3snode's own file"
    assert json.loads(secret.read_text()) == {"managed": {"/etc/shadow": ["root"]}}


def test_state_that_is_a_directory_is_one_line(root):
    (root / "var/lib/k3snode/state.json").mkdir()
    out = _apply(root, "--mesh", "none")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "state.json" in out.stderr.splitlines()[-1]
    assert not (root / "etc/rancher/k3s/config.yaml").exists()


@pytest.mark.netns  # needs root to mount
@pytest.mark.parametrize("how", ["full", "read-only"])
def test_full_or_read_only_file_system_is_one_line(root, how):
    k3s_dir = root / "etc/rancher/k3s"
    (k3s_dir / "config.yaml").write_text("debug: true\n")
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "k3sn-hardening", str(k3s_dir))
    try:
        (k3s_dir / "config.yaml").write_text("debug: true\n" + "# pad\n" * 100)
        if how == "full":
            fd = os.open(k3s_dir / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError:
                pass
            finally:
                os.close(fd)
        else:
            sh("mount", "-o", "remount,ro", str(k3s_dir))
        before = (k3s_dir / "config.yaml").read_text()
        out = _apply(root, "--mesh", "none")
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr
        last = out.stderr.strip().splitlines()[-1]
        reason = "No space left" if how == "full" else "Read-only file system"
        assert reason in last and str(k3s_dir / "config.yaml") in last, out.stderr
        assert (k3s_dir / "config.yaml").read_text() == before
        assert not [n for n in os.listdir(k3s_dir) if n.endswith(".k3snode-tmp")]
    finally:
        sh("umount", str(k3s_dir), check=False)


@pytest.mark.netns
def test_daemon_with_damaged_state_recovers_instead_of_an_internal_error_every_5s(tmp_path):
    from daemon_node import make_node

    with make_node(tmp_path) as node:
        state = tmp_path / "var/lib/k3snode/state.json"
        state.write_text('{"managed": {"x": "abc"}, "last_good": []}')
        node.start()
        node.wait_external(["5.6.7.8"])
        time.sleep(1)
        assert node.stop() == 0
        out = node.output()
        assert "internal error" not in out and "Traceback" not in out, out
        assert sum("warning" in line and "state.json" in line for line in out.splitlines()) == 1
        assert json.loads(state.read_text())["managed"][node.config] == ["node-external-ip"]
