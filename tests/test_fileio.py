"""Atomic writes: a reader sees the old file or the new one — even when the writer is SIGKILLed."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest
import yaml
from helpers import REPO, clean_env

from k3snode import fileio


def test_write_creates_with_mode_and_reports_change(tmp_path):
    path = tmp_path / "sub" / "f.yaml"
    r = fileio.atomic_write(str(path), b"a: 1\n", mode=0o600)
    assert r.changed and path.read_bytes() == b"a: 1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    r = fileio.atomic_write(str(path), b"a: 1\n", mode=0o600)
    assert not r.changed
    r = fileio.atomic_write(str(path), b"a: 2\n", mode=0o644)
    assert r.changed and stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_umask_does_not_narrow_or_widen(tmp_path):
    old = os.umask(0o077)
    try:
        fileio.atomic_write(str(tmp_path / "x"), b"1", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x").st_mode) == 0o644


def test_stale_temporary_files_are_removed_and_never_yaml(tmp_path):
    target = tmp_path / "90-k3snode.yaml"
    leftover = tmp_path / f".90-k3snode.yaml.123.abcd{fileio.TMP_SUFFIX}"
    leftover.write_text("torn")
    fileio.atomic_write(str(target), b"a: 1\n")
    assert sorted(os.listdir(tmp_path)) == ["90-k3snode.yaml"]
    assert not fileio.TMP_SUFFIX.endswith((".yaml", ".yml"))


WRITER = r"""
import sys
from k3snode import fileio
path, tag = sys.argv[1:3]
for i in range(300):
    fileio.atomic_write(path, f"{tag}: {i}\n".encode() * 200)
"""


def test_two_writers_at_once_never_fail_each_other(tmp_path):
    """Each writer's temporary file is its own: a second writer never deletes it mid-write."""
    target = tmp_path / "config.yaml"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), tag],
            env=clean_env(),
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    lines = set(target.read_text().splitlines())
    assert len(lines) == 1 and lines.pop().endswith(": 299")
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_a_dead_writers_leftover_is_removed_but_a_live_ones_is_kept(tmp_path):
    target = tmp_path / "f"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    dead_tmp = tmp_path / f".f.{dead}.aaaa{fileio.TMP_SUFFIX}"
    live_tmp = tmp_path / f".f.1.bbbb{fileio.TMP_SUFFIX}"  # pid 1 always runs
    dead_tmp.write_text("x")
    live_tmp.write_text("y")
    fileio.atomic_write(str(target), b"new")
    assert not dead_tmp.exists() and live_tmp.exists()


CHILD = r"""
import sys
from k3snode.cli import main
cfg, state, k3s = sys.argv[1:4]
ips = ["172.233.211.141", "8.8.4.4"]
i = 0
while True:
    main(["apply", "--config", cfg, "--state-dir", state, "--k3s-config", k3s,
          "--external-ip", ips[i % 2], "--external-ip", "2600:1900::%d" % (i % 2 + 1)])
    i += 1
"""


@pytest.mark.parametrize(
    "kills", [8, pytest.param(60, marks=pytest.mark.slow)], ids=lambda n: f"{n}-kills"
)
def test_sigkill_during_apply_never_leaves_a_torn_config(root, kills):
    """Kill a writer looping over `apply` at random instants, many times; after every kill the
    config is complete (one of the two versions, user keys and comments intact), the state file is
    valid, and nothing K3s would read (``*.yaml``) is left beside it. The plain tier kills 8 times;
    the ``slow`` tier (CI) 60 times."""
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text('[node]\nmesh = "none"\n')
    k3s_dir = root / "etc/rancher/k3s/config.yaml.d"
    k3s_dir.mkdir()
    k3s = k3s_dir / "90-k3snode.yaml"
    # A large user section makes every pass parse and write real work, so kills land inside it
    # (one K3s flag with 3000 items: 3000 unknown keys would spend each pass on "did you mean").
    user = "# operator's own settings\nnode-label:\n" + "".join(
        f"- k{i}=v{i}\n" for i in range(3000)
    )
    k3s.write_text(user)
    state = root / "var/lib/k3snode"
    expected = [
        {"node-external-ip": ["172.233.211.141", "2600:1900::1"]},
        {"node-external-ip": ["8.8.4.4", "2600:1900::2"]},
    ]
    user_data = yaml.safe_load(user)
    rng = random.Random(1234)
    env = clean_env(PYTHONDONTWRITEBYTECODE="1")
    seen = set()
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(cfg), str(state), str(k3s)],
                                 env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        # Let it finish one pass (so kills land mid-pass, not only during start-up), then kill.
        before = k3s.stat().st_mtime_ns
        deadline = time.monotonic() + 20
        while k3s.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        text = k3s.read_text()
        data = yaml.safe_load(text)
        managed = {k: v for k, v in data.items() if k not in user_data}
        assert {k: v for k, v in data.items() if k in user_data} == user_data
        assert managed in expected or managed == {}, managed
        assert text.startswith("# operator's own settings\n")
        seen.add(json.dumps(managed))
        leftovers = [n for n in os.listdir(k3s_dir) if n != "90-k3snode.yaml"]
        assert not any(n.lower().endswith((".yaml", ".yml")) for n in leftovers), leftovers
        if managed:  # k3snode records a key before it writes it, never after
            st = json.loads((state / "state.json").read_text())
            assert "node-external-ip" in st["managed"][str(k3s)]
    assert len(seen) >= 2, "the writer never got to write both versions; the test proved nothing"
