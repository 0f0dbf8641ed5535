"""Registration against a real BIND 9 (``tests/bind.py``): named as user bind in a network
namespace, a zone whose update-policy grants the key only k3s.example.test A/AAAA. Each "server"
is ``k3snode registration publish|withdraw`` as a process with its own state directory; ``dig``
checks the zone after every step."""

from __future__ import annotations

import os

import pytest
from bind import NAME, Bind, available
from helpers import NetNS, run_k3snode

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not available(), reason="needs bind9 and bind9-dnsutils"),
]

OTHER = ["192.0.2.99"]  # other.example.test, a record no server may touch


@pytest.fixture
def dns():
    with NetNS.create("k3sd") as ns:
        b = Bind(ns.name)
        try:
            b.start()
            yield b
        finally:
            b.close()


class Server:
    """One k3snode server: its settings, state directory and TSIG key file (0600)."""

    def __init__(self, tmp_path, dns: Bind, n: int, key: str | None = None, **reg) -> None:
        self.dns = dns
        self.dir = tmp_path / f"server{n}"
        self.dir.mkdir()
        self.key = self.dir / "tsig.key"
        with open(dns.key_conf) as f:
            self.key.write_text(key if key is not None else f.read())
        os.chmod(self.key, 0o600)
        lines = {"name": NAME, "server": dns.server, "key_file": str(self.key), "timeout": 2,
                 **reg}  # fmt: skip
        self.cfg = self.dir / "config.toml"
        self.cfg.write_text(
            f'[node]\nrole = "server"\nmesh = "none"\n[k3s]\nconfig = "{self.dir}/config.yaml"\n'
            f'[paths]\nstate_dir = "{self.dir}/state"\nrun_dir = "{self.dir}/run"\n'
            "[registration]\n"
            + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in lines.items())
        )

    def run(self, *args: str):
        return run_k3snode("registration", *args, "--config", str(self.cfg), netns=self.dns.netns)

    def publish(self, *ips: str):
        r = self.run("publish", *(f"--external-ip={ip}" for ip in ips))
        assert r.returncode == 0, r.stderr
        return r


def test_first_publish_then_a_change_replaces_only_this_servers_record(dns, tmp_path):
    s = Server(tmp_path, dns, 1)
    r = s.publish("198.51.100.1")
    assert "k3s.example.test at 127.0.0.1:5353: published 198.51.100.1" in r.stdout
    assert dns.records() == ["198.51.100.1"]
    dns.nsupdate(f"update add {NAME}. 60 A 203.0.113.50")  # someone else's, by hand
    r = s.publish("198.51.100.2")
    assert "published 198.51.100.2; removed 198.51.100.1" in r.stdout
    assert dns.records() == ["198.51.100.2", "203.0.113.50"]
    assert dns.records(name="other.example.test") == OTHER
    assert dns.ttl() == 60  # [registration] ttl's default
    serial = dns.serial()
    r = s.publish("198.51.100.2")  # the daemon's refresh: the same update again
    assert "k3s.example.test at 127.0.0.1:5353: already current" in r.stdout
    assert dns.serial() == serial  # a no-op for BIND: no zone change, nothing to transfer


def test_three_servers_share_the_name_and_each_change_touches_only_its_own(dns, tmp_path):
    servers = [Server(tmp_path, dns, n) for n in (1, 2, 3)]
    want = []
    for n, s in enumerate(servers, start=1):
        s.publish(f"198.51.100.{n}")
        want.append(f"198.51.100.{n}")
        assert dns.records() == sorted(want)
    for n, s in enumerate(servers, start=1):  # each server moves, one after the other
        s.publish(f"203.0.113.{n}")
        want[n - 1] = f"203.0.113.{n}"
        assert dns.records() == sorted(want)
    r = servers[1].run("withdraw")
    assert r.returncode == 0 and "removed 203.0.113.2" in r.stdout
    assert dns.records() == ["203.0.113.1", "203.0.113.3"]
    r = servers[1].run("withdraw")
    assert r.returncode == 0 and "nothing published by this node" in r.stdout
    show = servers[0].run("show")
    assert "this node:  203.0.113.1" in show.stdout
    assert "DNS holds:  203.0.113.1, 203.0.113.3" in show.stdout
    assert dns.records(name="other.example.test") == OTHER


def test_ipv6_and_dual_stack_over_ipv6(dns, tmp_path):
    s = Server(tmp_path, dns, 1, server=f"[::1]:{dns.port}")
    s.publish("198.51.100.1", "2001:db8::1")
    assert dns.records("A") == ["198.51.100.1"] and dns.records("AAAA") == ["2001:db8::1"]
    s.publish("198.51.100.1", "2001:db8::2")  # only the IPv6 address moved
    assert dns.records("A") == ["198.51.100.1"] and dns.records("AAAA") == ["2001:db8::2"]
    v6 = Server(tmp_path, dns, 2, publish="ipv6")
    v6.publish("198.51.100.7", "2001:db8::7")
    assert dns.records("A") == ["198.51.100.1"]
    assert dns.records("AAAA") == ["2001:db8::2", "2001:db8::7"]
    assert s.run("withdraw").returncode == 0
    assert dns.records("A") == [] and dns.records("AAAA") == ["2001:db8::7"]


@pytest.mark.parametrize(
    "how, answer",
    [
        ("secret", "NOTAUTH/BADSIG: the server rejects the signature of TSIG key 'k3snode-key'"),
        ("name", "NOTAUTH/BADKEY: the server does not know TSIG key 'stranger-key'"),
        ("policy", "REFUSED (the zone's update policy does not let key 'k3snode-key' change "
                   "other.example.test A/AAAA"),
        ("mode", "readable by group or others (mode 0644); chmod 600 it"),
        ("missing", "tsig.key does not exist"),
    ],
)  # fmt: skip
def test_a_wrong_key_is_one_clear_line_and_the_zone_is_unchanged(dns, tmp_path, how, answer):
    good = Server(tmp_path, dns, 0)
    good.publish("198.51.100.1")
    serial = dns.serial()
    with open(dns.key_conf) as f:
        text = f.read()
    key, extra = text, {}
    if how == "secret":
        secret = dns.secret()
        key = text.replace(secret, ("B" if secret[0] == "A" else "A") + secret[1:])
    elif how == "name":
        key = text.replace("k3snode-key", "stranger-key")
    elif how == "policy":
        extra = {"name": "other.example.test"}
    s = Server(tmp_path, dns, 1, key=key, **extra)
    if how == "mode":
        os.chmod(s.key, 0o644)
    elif how == "missing":
        os.unlink(s.key)
    r = s.run("publish", "--external-ip=198.51.100.9")
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"k3snode: {extra.get('name', NAME)} at 127.0.0.1:5353: "), last
    assert answer in last
    assert "Traceback" not in r.stderr and dns.secret() not in r.stderr
    assert dns.serial() == serial
    assert dns.records() == ["198.51.100.1"] and dns.records(name="other.example.test") == OTHER


def test_a_dns_server_that_is_down_fails_within_the_timeout_and_then_works(dns, tmp_path):
    s = Server(tmp_path, dns, 1, timeout=1)
    s.publish("198.51.100.1")
    dns.stop()
    r = s.run("publish", "--external-ip=198.51.100.2")
    assert r.returncode == 1
    assert "k3s.example.test at 127.0.0.1:5353: no answer within 1s (timeout)" in r.stderr
    dns.start()
    assert dns.records() == ["198.51.100.1"]  # nothing half-done
    assert "removed 198.51.100.1" in s.publish("198.51.100.2").stdout
    assert dns.records() == ["198.51.100.2"]


def test_prepare_image_withdraws_this_servers_record_first(dns, tmp_path):
    a, b = Server(tmp_path, dns, 1, timeout=1), Server(tmp_path, dns, 2)
    a.publish("198.51.100.1")
    b.publish("198.51.100.2")
    state = a.dir / "state" / "registration.json"
    dns.stop()
    r = run_k3snode("prepare-image", "--config", str(a.cfg), netns=dns.netns)
    assert r.returncode == 1
    assert "cannot withdraw 198.51.100.1 from k3s.example.test" in r.stderr
    assert "nothing removed" in r.stderr and state.exists()
    dns.start()
    r = run_k3snode("prepare-image", "--config", str(a.cfg), netns=dns.netns)
    assert r.returncode == 0, r.stderr
    assert "withdrew 198.51.100.1 from k3s.example.test (registration)" in r.stdout
    assert dns.records() == ["198.51.100.2"] and not state.exists()
