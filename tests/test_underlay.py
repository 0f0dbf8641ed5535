"""The underlay without privileges: which peers, which routes, the preflight, the CLI's errors."""

from __future__ import annotations

import json
import os

import pytest
from helpers import run_k3snode

from k3snode import underlay
from k3snode.commands.check import PREFLIGHTS
from k3snode.config.load import load
from k3snode.health.registry import observers
from k3snode.mesh.wg import keys

KEYS = [keys.generate_private() for _ in range(3)]
PUBS = [keys.public_key(k) for k in KEYS]


def _toml(root, address="10.99.0.1/24", peers=(), extra="") -> str:
    path = root / "etc/k3snode/config.toml"
    text = f"""\
[paths]
state_dir = "{root}/var/lib/k3snode"
run_dir = "{root}/run/k3snode"

[underlay]
enabled = true
address = "{address}"
private_key_file = "{root}/var/lib/k3snode/underlay.key"
keepalive = 20
{extra}
"""
    for p in peers:
        text += "\n[[underlay.peers]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items())
    path.write_text(text)
    return str(path)


def _peer(i, **kw):
    return {"public_key": PUBS[i], "endpoint": f"s{i + 1}.example.net:51822",
            "address": f"10.99.0.{i + 1}", **kw}  # fmt: skip


def test_registered():
    assert underlay.observer in observers()
    assert underlay.preflight in PREFLIGHTS


def test_a_node_skips_itself_in_a_shared_list(root):
    s = load(_toml(root, peers=[_peer(0), _peer(1, keepalive=5), _peer(2, name="third")]))
    # by its public key (the list's first entry has this node's key, another address)
    got = underlay.wanted_peers(s, PUBS[0])
    assert [(w.public_key, w.name, w.keepalive) for w in got] == [
        (PUBS[1], "s2.example.net", 5),
        (PUBS[2], "third", 20),
    ]
    assert got[0].allowed_ips == ("10.99.0.2/32",) and (got[0].host, got[0].port) == (
        "s2.example.net",
        51822,
    )
    # by its underlay address, when the key in the list is not (yet) this node's
    assert [w.public_key for w in underlay.wanted_peers(s, "other")] == [PUBS[1], PUBS[2]]


def test_host_routes_only_outside_the_own_prefix(root):
    peers = [_peer(1), _peer(2, address="10.98.7.3"), {**_peer(0), "address": "fd00:99::1"}]
    s = load(_toml(root, peers=peers))
    got = underlay.route_targets(s, underlay.wanted_peers(s, "x"))
    assert got == ["10.98.7.3/32", "fd00:99::1/128"]


def _etcd_warnings(**env):
    s = load(None, env=env)
    return [f for f in underlay.preflight(s) if f.topic == "underlay"]


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
    assert not underlay.embedded_etcd(load(str(path)))


def test_observe_reports_a_missing_interface(root):
    s = load(_toml(root, extra='interface = "k3snode-nx0"'))
    obs = underlay.observe(s)
    assert obs.check == "underlay" and not obs.ok
    assert obs.detail == "k3snode-nx0 does not exist (underlay down)"
    off = load(None, env={})
    assert underlay.observer(off) == [] and underlay.keep(off) is None


def test_keeper_turns_a_bad_key_into_an_observation(root):
    cfg = _toml(root, extra='interface = "k3snode-nx1"')
    key_file = root / "var/lib/k3snode/underlay.key"
    key_file.write_text("garbage\n")
    (obs,) = underlay.observer(load(cfg))  # never raises: the daemon keeps running
    assert obs.check == "underlay" and not obs.ok
    assert str(key_file) in obs.detail and "not a WireGuard private key" in obs.detail
    assert key_file.read_text() == "garbage\n"


def test_cli_pubkey_creates_the_key_once(root):
    cfg = _toml(root)
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
    cfg = _toml(root)
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
    r = run_k3snode("wireguard", "up", "--watch", "--interval", "0", "--config", _toml(root))
    assert r.returncode == 2 and "--interval must be positive" in r.stderr


def test_check_changes_nothing(root):
    cfg = _toml(root, peers=[_peer(1)])
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
    peers = [_peer(1, endpoint="nowhere.invalid:51822"), _peer(2, endpoint="localhost:51822")]
    r = run_k3snode("check", "--json", "--mesh", "none", "--config", _toml(root, peers=peers))
    msgs = [f["message"] for f in json.loads(r.stdout) if f["level"] == "warning"]
    assert [m for m in msgs if "cannot resolve" in m] == [
        m for m in msgs if m.startswith("peer nowhere.invalid: cannot resolve nowhere.invalid (")
    ]
    assert len([m for m in msgs if "cannot resolve" in m]) == 1  # localhost resolves
