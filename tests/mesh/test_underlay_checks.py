"""The underlay's health check and preflight without privileges, and the CLI's errors."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_k3snode
from underlaytest import KEYS, PUBS, peer_entry, underlay_toml

from k3snode.commands.check import PREFLIGHTS
from k3snode.config.load import load
from k3snode.health import registry
from k3snode.mesh.underlay import checks
from k3snode.mesh.underlay.keeper import Keeper
from k3snode.mesh.underlay.plan import Seen
from k3snode.mesh.wg import keys
from k3snode.mesh.wg.types import Device, Peer


def test_registered():
    assert checks.preflight in PREFLIGHTS
    # not an observer of its own: the daemon judges what its keeper's last pass saw
    names = [registry.name(o) for o in registry.observers()]
    assert not [n for n in names if "underlay" in n], names


def _etcd_warnings(**env):
    s = load(None, env=env)
    return [f for f in checks.preflight(s) if f.topic == "underlay"]


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({"K3SNODE_K3S_CLUSTER_INIT": "true"}, True),  # first server of embedded etcd
        ({"K3S_URL": "https://a.example:6443", "K3S_TOKEN": "t", "K3SNODE_ROLE": "server"}, True),
        ({"K3SNODE_K3S_CLUSTER_INIT": "true", "K3SNODE_MESH": "none"}, False),  # one network
        ({}, False),  # a single server on SQLite
        ({"K3S_URL": "https://a.example:6443", "K3S_TOKEN": "t"}, False),  # an agent
    ],
)
def test_embedded_etcd_across_networks_without_underlay_warns(env, warned):
    found = _etcd_warnings(**env)
    assert bool(found) is warned
    if warned:
        (f,) = found
        assert f.level == "warning" and "embedded etcd" in f.message
        assert "Enable [underlay]" in f.message


def test_external_datastore_is_not_embedded_etcd(root):
    path = root / "etc/k3snode/config.toml"
    path.write_text(
        '[k3s]\ncluster_init = true\n[k3s.options]\ndatastore-endpoint = "postgres://db"\n'
    )
    assert not checks.embedded_etcd(load(str(path)))


def test_observe_reads_the_interface_when_given_nothing(root):
    s = load(underlay_toml(root, extra='interface = "k3snode-nx0"'))
    obs = checks.observe(s)
    assert obs.check == "underlay" and not obs.ok
    assert obs.detail == "k3snode-nx0 does not exist (underlay down)"


def test_observe_judges_what_the_pass_saw(root):
    """Given the keeper's last ``Seen``, the check reads nothing: an interface that does not
    exist is not looked at."""
    s = load(underlay_toml(root, peers=[peer_entry(1, name="cp-2")], extra='interface = "nx9"'))
    now = 1_000_000.0
    peer = Peer(PUBS[1], "198.51.100.2:51822", now - 30, 10, 20, 20, ("10.99.0.2/32",))
    dev = Device("nx9", "userspace", PUBS[0], 51822, (peer,))
    obs = checks.observe(s, Seen(dev, now))
    assert obs.ok and obs.facts["address"] == "10.99.0.1/24" and obs.facts["peers"] == "1"
    (ph,) = obs.peers
    assert (ph.name, ph.endpoint, ph.stale) == ("cp-2", "198.51.100.2:51822", False)
    old = Peer(PUBS[1], "198.51.100.2:51822", now - 1000, 10, 20, 20, ("10.99.0.2/32",))
    stale = checks.observe(s, Seen(Device("nx9", "userspace", PUBS[0], 51822, (old,)), now))
    assert not stale.ok and stale.peers[0].stale
    failed = checks.observe(s, Seen(None, now, "underlay: setting the addresses of nx9: EPERM"))
    assert (failed.ok, failed.detail) == (False, "underlay: setting the addresses of nx9: EPERM")


def test_a_peer_never_handshaken_is_stale_by_the_keepers_memory(root):
    """Judged with the keeper's ``PeerJudge`` (as the daemon does), a peer that never completed a
    handshake is stale once it has been seen that long; a one-shot check has no such memory."""
    s = load(underlay_toml(root, peers=[peer_entry(1)], extra='interface = "nx9"'))
    keeper = Keeper(s)  # makes nothing on the host until a pass runs
    never = Peer(PUBS[1], "198.51.100.2:51822", None, 0, 0, 20, ("10.99.0.2/32",))
    dev = Device("nx9", "userspace", PUBS[0], 51822, (never,))
    now = 1_000_000.0
    limit = 120 + 3 * 20  # REKEY_AFTER_TIME + 3 keepalives
    first = checks.observe(s, Seen(dev, now), peer_judge=keeper.judge)
    later = checks.observe(s, Seen(dev, now + limit + 1), peer_judge=keeper.judge)
    assert first.ok and not first.peers[0].stale
    assert not later.ok and later.peers[0].stale, later.detail
    assert checks.observe(s, Seen(dev, now + limit + 1)).ok, "a fresh judge has not seen it yet"


def test_cli_pubkey_creates_the_key_once(root):
    cfg = underlay_toml(root)
    r1 = run_k3snode("wireguard", "pubkey", "--config", cfg)
    r2 = run_k3snode("wireguard", "pubkey", "--config", cfg)
    assert r1.returncode == r2.returncode == 0, r1.stderr
    key_file = root / "var/lib/k3snode/underlay.key"
    private = key_file.read_text().strip()
    assert r1.stdout == r2.stdout == keys.public_key(keys.Secret(private)) + "\n"
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    assert private not in r1.stderr + r1.stdout
    assert "created private key" in r1.stderr and "created" not in r2.stderr


def test_cli_bad_key_file_is_one_line_exit_1(root):
    """A key file that holds garbage is broken state, not a usage mistake: exit 1."""
    cfg = underlay_toml(root)
    key_file = root / "var/lib/k3snode/underlay.key"
    key_file.write_text("hunter2\n")
    for action in ("pubkey", "up"):
        r = run_k3snode("wireguard", action, "--config", cfg)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert str(key_file) in r.stderr and "not a WireGuard private key" in r.stderr
        assert "hunter2" not in r.stderr
    assert key_file.read_text() == "hunter2\n"


@pytest.mark.parametrize("action", ["up", "pubkey", "show"])
def test_cli_with_the_underlay_off_says_so_and_creates_nothing(root, action):
    path = root / "etc/k3snode/config.toml"
    path.write_text(f'[underlay]\nenabled = false\nprivate_key_file = "{root}/underlay.key"\n')
    r = run_k3snode("wireguard", action, "--config", str(path))
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.startswith("k3snode: error: the underlay is not enabled (")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (root / "underlay.key").exists()


def test_cli_bad_interval(root):
    r = run_k3snode(
        "wireguard", "up", "--watch", "--interval", "0", "--config", underlay_toml(root)
    )
    assert r.returncode == 2 and "--interval must be positive" in r.stderr


def test_check_changes_nothing(root):
    cfg = underlay_toml(root, peers=[peer_entry(1)])
    key_file = root / "var/lib/k3snode/underlay.key"
    r = run_k3snode("check", "--json", "--mesh", "none", "--config", cfg)
    found = [f for f in json.loads(r.stdout) if f["topic"] == "underlay"]
    assert found[0]["message"].endswith(f"private key {key_file} will be created on first start")
    assert not key_file.exists()
    key_file.write_text(KEYS[0].reveal() + "\n")
    key_file.chmod(0o644)
    r = run_k3snode("check", "--json", "--mesh", "none", "--config", cfg)
    msgs = [f["message"] for f in json.loads(r.stdout) if f["topic"] == "underlay"]
    assert msgs[0].endswith(f"public key {PUBS[0]}")
    assert f"{key_file} is readable by others; k3snode makes it 0600 on its next pass" in msgs
    assert oct(key_file.stat().st_mode & 0o777) == "0o644"  # untouched by the check
    assert KEYS[0].reveal() not in r.stdout + r.stderr
    key_file.write_text("junk")
    r = run_k3snode("check", "--json", "--mesh", "none", "--config", cfg)
    (bad,) = [f for f in json.loads(r.stdout) if f["topic"] == "underlay"]
    assert bad["level"] == "error" and "not a WireGuard private key" in bad["message"]
    assert r.returncode == 1


def test_check_warns_about_names_that_do_not_resolve(root):
    peers = [
        peer_entry(1, endpoint="nowhere.invalid:51822"),
        peer_entry(2, endpoint="localhost:51822"),
    ]
    r = run_k3snode(
        "check", "--json", "--mesh", "none", "--config", underlay_toml(root, peers=peers)
    )
    msgs = [f["message"] for f in json.loads(r.stdout) if f["level"] == "warning"]
    assert [m for m in msgs if "cannot resolve" in m] == [
        m for m in msgs if m.startswith("peer nowhere.invalid: cannot resolve nowhere.invalid (")
    ]
    assert len([m for m in msgs if "cannot resolve" in m]) == 1  # localhost resolves
