"""Normalise and judge IP addresses.

Every address k3snode takes from the network or the user passes through here. Metadata services
answer with upper-case or zero-padded IPv6, CIDR suffixes, trailing newlines; interfaces carry
private and link-local addresses next to the public one. ``normalise`` turns any of these into
the canonical text form, ``public_problem`` says why an address cannot be a node's public one.

The checks are an explicit list rather than ``ipaddress.is_global`` alone, because the meaning of
``is_global``/``is_private`` changed between Python patch releases and k3snode runs on 3.9–3.13.
"""

from __future__ import annotations

import ipaddress
from typing import Union

from k3snode.record import record

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# (network, reason) — an address inside any of these is never a node's public address.
_NOT_PUBLIC: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified/'this network'"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598, also Tailscale)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated, RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("2001:10::/28", "ORCHID (deprecated)"),
    ("2002::/16", "6to4"),
    ("3ffe::/16", "6bone (returned, RFC 3701)"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in _NOT_PUBLIC)


class AddressError(ValueError):
    """Text that is not an IP address."""


def parse(text: str) -> IPAddress:
    """Parse an address, tolerating whitespace, case, brackets and a CIDR suffix.

    Raises AddressError with a short reason when the text is not one address.
    """
    if not isinstance(text, str):
        raise AddressError(f"not a string: {text!r}")
    s = text.strip()
    if not s:
        raise AddressError("empty")
    if len(s) > 64 or any(c.isspace() for c in s):
        raise AddressError(f"not an IP address: {_preview(s)}")
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    if "%" in s:  # zone index (fe80::1%eth0) — never public, but still an address
        s = s.split("%", 1)[0]
    try:
        return ipaddress.ip_interface(s).ip
    except ValueError:
        raise AddressError(f"not an IP address: {_preview(s)}") from None


def normalise(text: str) -> str:
    """Canonical text form: compressed lower-case IPv6, no prefix length, no whitespace."""
    return str(parse(text))


def family(address: str) -> int:
    """4 or 6."""
    return parse(address).version


def public_problem(address: str | IPAddress) -> str | None:
    """Why ``address`` cannot be a node's public address, or None when it can."""
    ip = parse(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "IPv4-mapped IPv6 address"
    for net, why in _NETWORKS:
        if ip.version == net.version and ip in net:
            return why
    if not ip.is_global:
        return "not globally routable"
    return None


@record
class Judged:
    """One candidate address and the verdict on it."""

    address: str | None  # normalised form, None when it did not parse
    family: int | None
    problem: str | None  # None: usable as a public address

    @property
    def ok(self) -> bool:
        return self.problem is None and self.address is not None


def judge(text: str, want_family: int | None = None) -> Judged:
    """Normalise and judge in one step; never raises."""
    try:
        ip = parse(text)
    except AddressError as e:
        return Judged(None, None, str(e))
    if want_family is not None and ip.version != want_family:
        return Judged(
            str(ip), ip.version, f"IPv{ip.version} address where IPv{want_family} was expected"
        )
    return Judged(str(ip), ip.version, public_problem(ip))


def order_v4_first(addresses: list[str]) -> list[str]:
    """At most one address per family, IPv4 first (K3s uses the first of each family)."""
    v4 = [a for a in addresses if family(a) == 4]
    v6 = [a for a in addresses if family(a) == 6]
    return v4[:1] + v6[:1]


def _preview(s: str, limit: int = 40) -> str:
    s = s.replace("\n", "\\n").replace("\r", "\\r")
    return repr(s if len(s) <= limit else s[:limit] + "…")
