"""The daemon's registration keeper on a test clock, with a real backend plugin
(``tests/fakes/dnsplugin.py``, the documented plugin interface): backoff with jitter, no storm,
K3s's restart held only while the update for a new address is in flight."""

from __future__ import annotations

import json
import random

import pytest

from k3snode.config.load import load
from k3snode.registration import keeper as keeper_mod
from k3snode.registration import publish, published, withdraw


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dns(tmp_path, monkeypatch):
    path = tmp_path / "dns.json"
    path.write_text(json.dumps({"records": ["192.0.2.200"], "fail": "", "calls": []}))
    monkeypatch.setenv("K3SNODE_TEST_DNS_FILE", str(path))

    class DNS:
        def read(self):
            return json.loads(path.read_text())

        def fail(self, why):
            d = self.read()
            d["fail"] = why
            path.write_text(json.dumps(d))

        def slow(self, seconds):
            d = self.read()
            d["sleep"] = seconds
            path.write_text(json.dumps(d))

    return DNS()


def make_settings(tmp_path, **reg):
    values = {
        ("node", "role"): "server",
        ("paths", "state_dir"): str(tmp_path / "state"),
        ("registration", "name"): "k3s.example.test",
        ("registration", "backend"): "fakes.dnsplugin:make",
    }
    values.update({("registration", k): v for k, v in reg.items()})
    cfg = tmp_path / "config.toml"
    cfg.touch()
    return load(str(cfg), env={}, overrides=values)


def run_update(k: keeper_mod.Keeper, got: list) -> None:
    assert k.maybe_start()
    k.join(10)
    k.finished(got.pop())


def test_only_this_servers_address_is_replaced_and_remembered(tmp_path, dns):
    s = make_settings(tmp_path)
    assert publish(s, ("198.51.100.1",)).ok
    out = publish(s, ("198.51.100.2",))
    assert out.ok and out.removed == ("198.51.100.1",) and out.added == ("198.51.100.2",)
    assert dns.read()["records"] == ["192.0.2.200", "198.51.100.2"]  # the other server's stays
    assert dns.read()["calls"][-1] == {"remove": ["198.51.100.1"], "add": ["198.51.100.2"]}
    rec = published.load(published.path(s.paths.state_dir))
    assert rec.addresses == ("198.51.100.2",) and rec.name == "k3s.example.test"
    assert withdraw(s).ok
    assert dns.read()["records"] == ["192.0.2.200"]
    assert published.load(published.path(s.paths.state_dir)) is None


def test_failures_back_off_exponentially_with_jitter_up_to_retry_max(tmp_path, dns):
    s = make_settings(tmp_path, retry_max=20)
    clock, got = Clock(), []
    k = keeper_mod.Keeper(s, clock, got.append, rng=random.Random(7))
    dns.fail("REFUSED")
    k.want(("198.51.100.1",))
    assert k.holds_restart()  # the first update for a new address is awaited
    waits = []
    for _ in range(8):
        run_update(k, got)
        assert not k.holds_restart()  # a failing DNS never holds K3s back
        waits.append(k.due() - clock.now)
        assert not k.maybe_start()  # nothing before the backoff ends: no storm
        clock.now = k.due()
    for n, w in enumerate(waits, start=1):
        assert 0.5 * min(20, 2 ** (n - 1)) <= w <= min(20, 2 ** (n - 1))
    assert waits[-1] >= 10  # capped at retry_max, never beyond
    assert len(dns.read()["calls"]) == 8
    obs = k.observation()
    assert not obs.ok and "REFUSED" in obs.detail and "k3s.example.test" in obs.detail
    dns.fail("")
    run_update(k, got)
    assert k.observation().ok and k.published == ("198.51.100.1",) and k.failures == 0
    refresh = max(s.daemon.poll_interval, keeper_mod.REFRESH)  # not every 20 s metadata poll
    assert 0.9 * refresh <= k.due() - clock.now <= 1.1 * refresh  # next: the refresh


def test_a_new_address_during_backoff_is_tried_at_once(tmp_path, dns):
    s = make_settings(tmp_path)
    clock, got = Clock(), []
    k = keeper_mod.Keeper(s, clock, got.append, rng=random.Random(1))
    dns.fail("timeout")
    k.want(("198.51.100.1",))
    run_update(k, got)
    run_update_at = k.due()
    assert run_update_at > clock.now
    dns.fail("")
    k.want(("198.51.100.2",))
    assert k.due() == clock.now and k.holds_restart()
    run_update(k, got)
    assert k.published == ("198.51.100.2",) and not k.holds_restart()
    assert dns.read()["records"] == ["192.0.2.200", "198.51.100.2"]


def test_the_same_addresses_again_send_nothing_until_the_refresh_heals_a_lost_record(tmp_path, dns):
    s = make_settings(tmp_path)
    clock, got = Clock(), []
    k = keeper_mod.Keeper(s, clock, got.append)
    k.want(("198.51.100.1",))
    run_update(k, got)
    k.want(("198.51.100.1",))
    assert not k.maybe_start()
    assert len(dns.read()["calls"]) == 1
    d = dns.read()
    d["records"] = ["192.0.2.200"]  # the zone restored from an old file
    (tmp_path / "dns.json").write_text(json.dumps(d))
    clock.now = k.due()
    assert not k.holds_restart()  # a refresh never holds K3s back
    run_update(k, got)
    assert dns.read()["records"] == ["192.0.2.200", "198.51.100.1"]
    assert dns.read()["calls"][-1] == {"remove": [], "add": ["198.51.100.1"]}


def test_a_plugin_that_cannot_be_loaded_is_one_line(tmp_path, dns):
    s = make_settings(tmp_path, backend="no_such_module:make")
    out = publish(s, ("198.51.100.1",))
    assert not out.ok
    assert out.detail.startswith("[registration] backend: cannot load plugin 'no_such_module:make'")


def test_a_slow_update_holds_the_restart_only_up_to_the_bound(tmp_path, dns):
    s = make_settings(tmp_path, timeout=2)
    clock, got = Clock(), []
    k = keeper_mod.Keeper(s, clock, got.append)
    dns.slow(0.3)
    k.want(("198.51.100.1",))
    assert k.maybe_start()
    assert k.holds_restart() and k.due() == clock.now + 3  # timeout + 1 s
    clock.now += 3
    assert not k.holds_restart()  # K3s is restarted without waiting longer
    assert k.due() is None  # and the loop does not spin: the worker's result wakes it
    k.join(10)
    k.finished(got.pop())
    assert k.published == ("198.51.100.1",)


@pytest.mark.parametrize(
    "publish, want",
    [
        ("external", ("198.51.100.1", "2001:db8::1")),
        ("ipv4", ("198.51.100.1",)),
        ("ipv6", ("2001:db8::1",)),
        ("underlay", ("10.99.0.1",)),
    ],
)
def test_what_is_published(tmp_path, publish, want):
    from k3snode.registration import wanted

    extra = {}
    if publish == "underlay":
        extra = {("underlay", "enabled"): True, ("underlay", "address"): "10.99.0.1/24"}
    values = {
        ("node", "role"): "server",
        ("paths", "state_dir"): str(tmp_path / "state"),
        ("registration", "name"): "k3s.example.test",
        ("registration", "backend"): "fakes.dnsplugin:make",
        ("registration", "publish"): publish,
        **extra,
    }
    cfg = tmp_path / "config.toml"
    cfg.touch()
    s = load(str(cfg), env={}, overrides=values)
    assert wanted(s, ["2001:db8::1", "198.51.100.1"]) == want
