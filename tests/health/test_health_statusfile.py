"""The status file: atomic, world-readable JSON; a torn or missing file reads as nothing; the
peer rows it shows."""

from __future__ import annotations

import os
import stat

from k3snode.health.checks import Observation, PeerHealth
from k3snode.health.statusfile import peer_rows, read_status, remove_status, write_status


def test_status_file_is_atomic_world_readable_json(tmp_path):
    path = str(tmp_path / "run" / "status.json")
    write_status(path, {"pid": 1, "summary": "ok"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert read_status(path) == {"pid": 1, "summary": "ok"}
    with open(path, "w") as f:
        f.write("{torn")
    assert read_status(path) is None
    with open(path, "w") as f:
        f.write("[1, 2]")
    assert read_status(path) is None, "only an object is a status"
    remove_status(path)
    assert read_status(path) is None
    remove_status(path)  # gone already: not an error


def test_peer_rows_show_public_facts_and_ages():
    now = 5_000.0
    obs = [
        Observation("wireguard:flannel-wg", True, "", peers=(
            PeerHealth("flannel-wg", "K1", "192.0.2.1:51820", now - 12.34, 10, 20),
            PeerHealth("flannel-wg", "K2", None, now + 3, stale=True, name="cp-2"),
        )),
        Observation("tailscale", True, "", peers=(PeerHealth("tailscale0", "n", online=False),)),
        Observation("k3s", True, "active"),
    ]  # fmt: skip
    assert peer_rows(obs, now) == [
        {"check": "wireguard:flannel-wg", "interface": "flannel-wg", "peer": "K1", "name": "",
         "endpoint": "192.0.2.1:51820", "stale": False, "handshake_age": 12.3},
        {"check": "wireguard:flannel-wg", "interface": "flannel-wg", "peer": "K2", "name": "cp-2",
         "endpoint": None, "stale": True, "handshake_age": 0.0},  # a clock step back: never < 0
        {"check": "tailscale", "interface": "tailscale0", "peer": "n", "name": "",
         "endpoint": None, "stale": False, "online": False},
    ]  # fmt: skip
