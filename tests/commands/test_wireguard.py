"""``k3snode wireguard``: usage mistakes exit 2 and touch nothing; failures of the underlay itself
exit 1 with one line (the real CLI in a child process)."""

from __future__ import annotations

import pytest
from helpers import run_k3snode


def _config(tmp_path, key_file: str, extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\nstate_dir = "{tmp_path}/state"\nrun_dir = "{tmp_path}/run"\n'
        f'[underlay]\nenabled = true\naddress = "10.99.0.1/24"\n'
        f'private_key_file = "{key_file}"\n{extra}'
    )
    return str(path)


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_a_bad_interval_is_a_usage_mistake_and_nothing_is_made(tmp_path, interval):
    key = tmp_path / "underlay.key"
    r = run_k3snode("wireguard", "up", "--interval", interval, "--config", _config(tmp_path, key))
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"k3snode: error: --interval must be positive (got {interval})\n"
    assert not key.exists()


def test_an_unknown_action_is_a_usage_mistake(tmp_path):
    r = run_k3snode("wireguard", "down", "--config", _config(tmp_path, tmp_path / "k"))
    assert r.returncode == 2 and "invalid choice: 'down'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("action", ["pubkey", "up"])
def test_a_key_that_cannot_be_made_is_a_runtime_failure(tmp_path, action):
    """The key's directory is a file: the underlay cannot start, whatever the user typed."""
    (tmp_path / "file").write_text("")
    r = run_k3snode("wireguard", action, "--config", _config(tmp_path, tmp_path / "file/k"))
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("k3snode: error: ") and r.stderr.count("\n") == 1
    assert "cannot read or create" in r.stderr and f"{tmp_path}/file/k" in r.stderr
