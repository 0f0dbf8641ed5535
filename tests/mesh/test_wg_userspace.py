"""The userspace backend against real wireguard-go in two network namespaces."""

from __future__ import annotations

import time

import pytest
from helpers import NetNS, veth
from wgtest import need_wireguard_go, ping, wireguard_go

from k3snode.mesh.wg import keys
from k3snode.mesh.wg.link import open_backend
from k3snode.mesh.wg.types import NoSuchDevice, PeerUpdate, Update
from k3snode.mesh.wg.userspace import Userspace

pytestmark = pytest.mark.netns


@pytest.fixture
def pair():
    """Two namespaces on one veth (192.0.2.1/.2), wireguard-go in each, nothing configured."""
    need_wireguard_go()
    with NetNS.create() as a, NetNS.create() as b:
        veth(a, b, ["192.0.2.1/24"], ["192.0.2.2/24"])
        with wireguard_go(a) as wa, wireguard_go(b) as wb:
            yield a, b, wa, wb


def _up(ns, ifname, address):
    ns.ip("addr", "add", address, "dev", ifname)
    ns.ip("link", "set", ifname, "up")


def test_configure_handshake_ping_and_read(pair):
    a, b, wa, wb = pair
    ka, kb = keys.generate_private(), keys.generate_private()
    pa, pb = keys.public_key(ka), keys.public_key(kb)
    # up first: a keepalive sent to a peer whose interface is still down is dropped
    _up(a, wa, "10.77.0.1/24")
    _up(b, wb, "10.77.0.2/24")
    ua, ub = open_backend(wa), open_backend(wb)
    assert isinstance(ua, Userspace) and ua.kind == "userspace"
    # b (the responder) first: a's keepalive starts a handshake at once
    ub.configure(
        Update(kb, 51821, peers=(PeerUpdate(pa, endpoint="192.0.2.1:51820",
                                            allowed_ips=("10.77.0.1/32",)),))
    )  # fmt: skip
    ua.configure(
        Update(ka, 51820, peers=(PeerUpdate(pb, endpoint="192.0.2.2:51821", keepalive=1,
                                            allowed_ips=("10.77.0.2/32",)),))
    )  # fmt: skip
    assert ping(a, "10.77.0.2", count=2)

    dev = ua.read()
    assert dev.ifname == wa and dev.backend == "userspace"
    assert dev.public_key == pa and dev.listen_port == 51820
    (peer,) = dev.peers
    assert peer.public_key == pb
    assert peer.endpoint == "192.0.2.2:51821"
    assert peer.keepalive == 1
    assert peer.allowed_ips == ("10.77.0.2/32",)
    assert peer.last_handshake is not None and abs(time.time() - peer.last_handshake) < 30
    assert peer.rx_bytes > 0 and peer.tx_bytes > 0
    # b learned a's endpoint from the handshake too
    assert ub.read().peer(pa).endpoint == "192.0.2.1:51820"


def test_change_and_remove_peers(pair):
    _a, _b, wa, _wb = pair
    u = Userspace(wa)
    k = keys.generate_private()
    p1, p2, p3 = (keys.public_key(keys.generate_private()) for _ in range(3))
    u.configure(
        Update(k, 51830, peers=(
            PeerUpdate(p1, endpoint="192.0.2.9:1", allowed_ips=("10.1.0.1/32",)),
            PeerUpdate(p2, endpoint="[2001:db8::2]:2", keepalive=5, allowed_ips=("10.1.0.2/32", "fd00::2/128")),
        ))
    )  # fmt: skip
    dev = u.read()
    assert {p.public_key for p in dev.peers} == {p1, p2}
    assert dev.peer(p2).endpoint == "[2001:db8::2]:2"
    assert set(dev.peer(p2).allowed_ips) == {"10.1.0.2/32", "fd00::2/128"}
    # change: only the fields given change; the allowed IPs are replaced, not added to
    u.configure(Update(peers=(PeerUpdate(p1, keepalive=7, allowed_ips=("10.1.0.11/32",)),)))
    dev = u.read()
    assert dev.peer(p1).keepalive == 7
    assert dev.peer(p1).endpoint == "192.0.2.9:1"
    assert dev.peer(p1).allowed_ips == ("10.1.0.11/32",)
    assert dev.listen_port == 51830  # untouched
    # remove one, then replace the set
    u.configure(Update(peers=(PeerUpdate(p1, remove=True),)))
    assert [p.public_key for p in u.read().peers] == [p2]
    u.configure(Update(replace_peers=True, peers=(PeerUpdate(p3, allowed_ips=("10.1.0.3/32",)),)))
    assert [p.public_key for p in u.read().peers] == [p3]
    assert u.read().public_key == keys.public_key(k)


def test_missing_interface_is_no_such_device(tmp_path):
    with pytest.raises(NoSuchDevice, match="k3snode-nope"):
        Userspace("k3snode-nope", str(tmp_path)).read()
