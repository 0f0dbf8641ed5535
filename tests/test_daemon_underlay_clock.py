"""The daemon's own underlay keeper, driven by a test clock: one keeper for the daemon's life, a
pass every ``PASS_INTERVAL`` between the daemon's passes, a new keeper when a reload changes the
settings, none when the underlay is turned off; the ``underlay`` check reports what the last pass
saw. The key file holds garbage, so every pass stops at the key: nothing is made on the host."""

from __future__ import annotations

import pytest
from test_daemon_clock import World

from k3snode.mesh.underlay.keeper import PASS_INTERVAL


@pytest.fixture
def world(tmp_path, monkeypatch):
    for sub in ("etc/k3snode", "etc/rancher/k3s", "var/lib/k3snode", "run/k3snode"):
        (tmp_path / sub).mkdir(parents=True)
    return World(tmp_path, monkeypatch)


def _underlay(world, enabled=True, keepalive=20):
    key = world.root / "var/lib/k3snode/underlay.key"
    key.write_text("garbage\n")
    with open(world.file, "a") as f:
        f.write(f'[underlay]\nenabled = {str(enabled).lower()}\naddress = "10.99.0.1/24"\n'
                f'interface = "k3snode-nx7"\nprivate_key_file = "{key}"\n'
                f"keepalive = {keepalive}\n")  # fmt: skip
    return key


def test_the_daemon_keeps_one_keeper_and_drives_it(world):
    d = world.daemon("5.6.7.8", poll_interval=600)
    key = _underlay(world)
    d.reload()
    world.step(d, 0)
    keeper = d.underlay
    assert keeper is not None and keeper.seen is not None
    assert str(key) in keeper.seen.problem and keeper.seen.at == world.clock.t
    (check,) = [c for c in d.snapshot().checks if c.check == "underlay"]
    assert check.state != "ok" and "not a WireGuard private key" in check.detail
    first = keeper.seen.at
    world.step(d, PASS_INTERVAL / 2)
    assert keeper.seen.at == first, "no underlay pass before its interval"
    world.step(d, PASS_INTERVAL / 2)
    assert d.underlay is keeper and keeper.seen.at == first + PASS_INTERVAL
    # a reload that changes the settings: a new keeper; one that turns the underlay off: none
    world.settings("5.6.7.8", poll_interval=600)
    _underlay(world, keepalive=5)
    d.reload()
    world.step(d, 0)
    assert d.underlay is not None and d.underlay is not keeper
    world.settings("5.6.7.8", poll_interval=600)
    _underlay(world, enabled=False)
    d.reload()
    world.step(d, 0)
    assert d.underlay is None
    world.step(d, PASS_INTERVAL)
    assert d.underlay is None
