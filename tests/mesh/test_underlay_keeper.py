"""The underlay's decisions, pass by pass, with a test clock and a test resolver (the designed
seams): when an endpoint is set, and when it is left to WireGuard's roaming."""

from __future__ import annotations

import logging

import pytest
from underlaytest import KEYS, PUBS, peer_entry, underlay_toml

from k3snode.config.load import load
from k3snode.mesh.underlay.keeper import Keeper, UnderlayError
from k3snode.mesh.underlay.plan import Result, wanted_peers
from k3snode.mesh.wg.types import Device, Peer
from k3snode.record import replace


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class DNS:
    def __init__(self, **answers: str) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> str:
        self.calls.append(host)
        ans = self.answers.get(host.replace(".example.net", ""))
        if ans is None:
            raise OSError("Name or service not known")
        return ans


@pytest.fixture
def world(root):
    clock, dns = Clock(), DNS(s2="198.51.100.2")
    s = load(
        underlay_toml(
            root, peers=[peer_entry(0), peer_entry(1, keepalive=25)], extra="resolve_interval = 60"
        )
    )
    u = Keeper(s, resolver=dns, clock=clock, wall=clock)
    peers = wanted_peers(s, PUBS[0])
    return u, clock, dns, peers


def _pass(u, dev, peers, moved=False):
    result = Result()
    update = u.plan(dev, PUBS[0], KEYS[0], peers, result, moved)
    return update, result


def _dev(clock, endpoint, handshake_age=5.0, rx=None):
    """The device as read; ``rx`` None: the peer's traffic keeps arriving (rx grows with time)."""
    hs = None if handshake_age is None else clock.t - handshake_age
    rx = int(clock.t) if rx is None else rx
    peer = Peer(PUBS[1], endpoint, hs, rx, 100, 25, ("10.99.0.2/32",))
    return Device("ul", "userspace", PUBS[0], 51822, (peer,))


def test_new_peer_then_nothing(world):
    u, clock, dns, peers = world
    empty = Device("ul", "userspace", None, 0, ())
    update, result = _pass(u, empty, peers)
    assert update.private_key is KEYS[0] and update.listen_port == 51822
    (p,) = update.peers
    assert (p.public_key, p.endpoint, p.keepalive, p.allowed_ips) == (
        PUBS[1], "198.51.100.2:51822", 25, ("10.99.0.2/32",))  # fmt: skip
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert not update and result.changes == []
    assert dns.calls == ["s2.example.net"]  # not again before resolve_interval


def test_roamed_healthy_peer_is_left_alone(world):
    u, clock, dns, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    clock.t += 61  # DNS re-resolved: same answer
    update, result = _pass(u, _dev(clock, "203.0.113.50:40000"), peers)  # it roamed
    assert not update, result.changes
    assert dns.calls == ["s2.example.net"] * 2


def test_new_dns_answer_is_applied(world):
    u, clock, dns, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    dns.answers["s2"] = "198.51.100.22"
    clock.t += 30
    update, _ = _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert not update  # not due yet
    clock.t += 31
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert [p.endpoint for p in update.peers] == ["198.51.100.22:51822"]
    assert result.changes == ["peer s2.example.net endpoint 198.51.100.2:51822 -> "
                              "198.51.100.22:51822 (changed)"]  # fmt: skip


def test_a_new_process_does_not_undo_roaming(world, root):
    """No memory yet (a one-shot `wireguard up`): a healthy peer keeps its roamed endpoint."""
    u, clock, _, peers = world
    update, result = _pass(u, _dev(clock, "203.0.113.50:40000"), peers)
    assert not update, result.changes


def test_stale_peer_is_re_resolved_early_and_reset_at_most_every_10s(world):
    u, clock, dns, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    stale_age = 120 + 3 * 25 + 1
    clock.t += 11
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822", stale_age), peers)
    assert len(dns.calls) == 2  # re-resolved after 10 s, not 60, because the peer is stale
    assert [p.endpoint for p in update.peers] == ["198.51.100.2:51822"]
    assert result.changes == ["peer s2.example.net endpoint 198.51.100.2:51822 set again (stale)"]
    clock.t += 5
    update, _ = _pass(u, _dev(clock, "198.51.100.2:51822", stale_age), peers)
    assert not update  # at most every 10 s
    clock.t += 6
    # stale with a roamed endpoint: back to what DNS says
    update, result = _pass(u, _dev(clock, "203.0.113.50:40000", stale_age), peers)
    assert [p.endpoint for p in update.peers] == ["198.51.100.2:51822"]
    assert result.changes[0].endswith("-> 198.51.100.2:51822 (stale)")


def test_quiet_peer_is_re_resolved_every_10s_long_before_it_is_stale(world):
    """Two servers that moved at once: each stops hearing the other at once (rx bytes stand
    still) although the last handshake is recent; its name is re-resolved after 10 s, not 60."""
    u, clock, dns, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822", rx=500), peers)
    dns.answers["s2"] = "198.51.100.22"
    clock.t += 4
    update, _ = _pass(u, _dev(clock, "198.51.100.2:51822", rx=500), peers)
    assert not update and len(dns.calls) == 1  # quiet for 4 s only
    clock.t += 7  # quiet for 11 s, the answer 11 s old
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822", rx=500), peers)
    assert len(dns.calls) == 2
    assert [p.endpoint for p in update.peers] == ["198.51.100.22:51822"]
    assert result.changes[0].endswith("-> 198.51.100.22:51822 (changed)")
    # traffic again: back to resolve_interval
    clock.t += 11
    _pass(u, _dev(clock, "198.51.100.22:51822", rx=900), peers)
    clock.t += 11
    update, _ = _pass(u, _dev(clock, "198.51.100.22:51822", rx=1300), peers)
    assert not update and len(dns.calls) == 2


def test_own_address_change_sets_every_endpoint_again(world):
    u, clock, _, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    update, result = _pass(u, _dev(clock, "203.0.113.50:40000"), peers, moved=True)
    assert [p.endpoint for p in update.peers] == ["203.0.113.50:40000"]  # the current one
    assert result.changes == [
        "peer s2.example.net endpoint 203.0.113.50:40000 set again (own address changed)"
    ]


def test_dns_failure_keeps_the_last_answer(world, caplog):
    caplog.set_level(logging.INFO, logger="k3snode.mesh.underlay.keeper")
    u, clock, dns, peers = world
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    dns.answers.clear()
    clock.t += 61
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert not update
    assert result.notes == ["peer s2.example.net: cannot resolve s2.example.net (Name or service "
                            "not known); keeping the last endpoint"]  # fmt: skip
    clock.t += 61
    update, result = _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert not update and len(result.notes) == 1
    assert caplog.text.count("cannot resolve") == 1  # the same failure is logged once
    dns.answers["s2"] = "198.51.100.2"
    clock.t += 61
    _pass(u, _dev(clock, "198.51.100.2:51822"), peers)
    assert "s2.example.net resolves again" in caplog.text


def test_a_name_that_never_resolved_is_retried_every_10s_not_every_pass(world):
    u, clock, dns, peers = world
    dns.answers.clear()
    empty = Device("ul", "userspace", PUBS[0], 51822, ())
    _pass(u, empty, peers)
    for _ in range(5):
        clock.t += 1
        _pass(u, empty, peers)
    assert len(dns.calls) == 1  # a slow DNS server must not stall every pass
    clock.t += 10
    _pass(u, empty, peers)
    assert len(dns.calls) == 2


def test_garbage_from_the_resolver_is_rejected(world):
    u, _clock, dns, peers = world
    dns.answers["s2"] = "not-an-address"
    update, result = _pass(u, Device("ul", "userspace", PUBS[0], 51822, ()), peers)
    (p,) = update.peers
    assert p.endpoint is None and "cannot resolve" in result.notes[0]
    assert "peer s2.example.net added (no endpoint yet)" in result.changes


def test_keepalive_and_allowed_ips_change_in_place(world):
    u, clock, _, peers = world
    dev = _dev(clock, "198.51.100.2:51822")
    dev = replace(dev, peers=(replace(dev.peers[0], keepalive=0, allowed_ips=("10.99.0.9/32",)),))
    update, _result = _pass(u, dev, peers)
    (p,) = update.peers
    assert (p.endpoint, p.keepalive, p.allowed_ips) == (None, 25, ("10.99.0.2/32",))
    assert not p.remove and update.listen_port is None and update.private_key is None


def test_keep_turns_a_bad_key_into_what_it_saw(root):
    cfg = underlay_toml(root, extra='interface = "k3snode-nx1"')
    key_file = root / "var/lib/k3snode/underlay.key"
    key_file.write_text("garbage\n")
    k = Keeper(load(cfg))
    assert k.keep() is None  # never raises: the daemon keeps running
    assert k.seen is not None and k.seen.device is None
    assert str(key_file) in k.seen.problem and "not a WireGuard private key" in k.seen.problem
    assert key_file.read_text() == "garbage\n"


def test_the_key_is_read_again_only_when_its_file_changed(root):
    cfg = underlay_toml(root, extra='interface = "k3snode-nx2"')
    key_file = root / "var/lib/k3snode/underlay.key"
    k = Keeper(load(cfg))
    key, pub = k.private_key()  # created
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert k.private_key() == (key, pub)
    key_file.chmod(0o644)  # opened to others: narrowed again on the next pass
    assert k.private_key()[1] == pub
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    tmp = root / "var/lib/k3snode/new.key"  # replaced (as an operator restoring a backup would)
    tmp.write_text(KEYS[2].reveal() + "\n")
    tmp.chmod(0o600)
    tmp.replace(key_file)
    assert k.private_key()[1] == PUBS[2]
    key_file.write_text("garbage\n")
    with pytest.raises(UnderlayError, match="not a WireGuard private key"):
        k.private_key()
