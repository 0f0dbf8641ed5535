from __future__ import annotations

import pytest

from k3snode import addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("172.233.211.141", "172.233.211.141"),
        (" 172.233.211.141\n", "172.233.211.141"),
        ("172.233.211.141/32", "172.233.211.141"),
        ("2604:A880:0800:0000:1000:0000:0000:0000", "2604:a880:800:0:1000::"),
        ("2001:19f0:5:28a7:5400:03ff:fe1b:4eca", "2001:19f0:5:28a7:5400:3ff:fe1b:4eca"),
        ("2600:3c06::f03c:94ff:fe1b:4eca/128", "2600:3c06::f03c:94ff:fe1b:4eca"),
        ("[2600:1900::1]", "2600:1900::1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_normalise(text, expected):
    assert addresses.normalise(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "1.2.3", "<html>404</html>", "1.2.3.4 5.6.7.8", "x" * 200, "1.2.3.4/33"]
)
def test_parse_rejects_non_addresses(text):
    with pytest.raises(addresses.AddressError):
        addresses.parse(text)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.1.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("203.0.113.7", "documentation"),
        ("192.0.2.1", "documentation"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd20:b8f:5d95:2000:0:2::", "ULA"),
        ("fc00::1", "ULA"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
    ],
)
def test_not_public(address, reason):
    problem = addresses.public_problem(address)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "address", ["172.233.211.141", "8.8.8.8", "100.128.0.1", "2600:1900::1", "2a01:4f8::1"]
)
def test_public(address):
    assert addresses.public_problem(address) is None
    assert addresses.public_problem(address) is None


def test_judge_family_and_garbage():
    assert addresses.judge("8.8.8.8", want_family=6).problem.startswith("IPv4 address where IPv6")
    bad = addresses.judge("<html>")
    assert not bad.ok and bad.address is None
    good = addresses.judge("2600:1900:0000::0001\n", want_family=6)
    assert good.ok and good.address == "2600:1900::1"


def test_order_v4_first_keeps_one_per_family():
    assert addresses.order_v4_first(["2600:1900::1", "8.8.8.8", "1.1.1.1", "2a01::1"]) == [
        "8.8.8.8",
        "2600:1900::1",
    ]
