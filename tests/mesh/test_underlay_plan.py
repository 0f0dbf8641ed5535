"""What the settings want of the underlay: the peers without this node, the host routes."""

from __future__ import annotations

from underlaytest import PUBS, peer_entry, underlay_toml

from k3snode.config.load import load
from k3snode.mesh.underlay.plan import host_prefix, route_targets, wanted_peers


def test_a_node_skips_itself_in_a_shared_list(root):
    entries = [peer_entry(0), peer_entry(1, keepalive=5), peer_entry(2, name="third")]
    s = load(underlay_toml(root, peers=entries))
    # by its public key (the list's first entry has this node's key, another address)
    got = wanted_peers(s, PUBS[0])
    assert [(w.public_key, w.name, w.keepalive) for w in got] == [
        (PUBS[1], "s2.example.net", 5),
        (PUBS[2], "third", 20),
    ]
    assert got[0].allowed_ips == ("10.99.0.2/32",) and (got[0].host, got[0].port) == (
        "s2.example.net",
        51822,
    )
    # by its underlay address, when the key in the list is not (yet) this node's
    assert [w.public_key for w in wanted_peers(s, "other")] == [PUBS[1], PUBS[2]]


def test_host_routes_only_outside_the_own_prefix(root):
    peers = [
        peer_entry(1),
        peer_entry(2, address="10.98.7.3"),
        {**peer_entry(0), "address": "fd00:99::1"},
    ]
    s = load(underlay_toml(root, peers=peers))
    got = route_targets(s, wanted_peers(s, "x"))
    assert got == ["10.98.7.3/32", "fd00:99::1/128"]


def test_host_prefix():
    assert host_prefix("10.99.0.2/24") == "10.99.0.2/32"
    assert host_prefix("fd00:99::2") == "fd00:99::2/128"
