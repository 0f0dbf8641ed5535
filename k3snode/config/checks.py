"""The checks behind ``SCHEMA``: each takes a raw value (TOML value, environment string or flag)
and returns the normalised value, or raises ValueError with the reason. The loader adds where the
value came from and the value itself.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable
from urllib.parse import urlsplit

from k3snode import addresses, suggest
from k3snode.config.model import UnderlayPeer
from k3snode.discovery.providers import (
    IDS as PROVIDERS,
)  # one list: discovery/providers/__init__.py

# A secret and the file setting that replaces it: a layer that sets one hides the other below it.
SECRET_PAIRS = ((("k3s", "token"), ("k3s", "token_file")),
                (("tailscale", "auth_key"), ("tailscale", "auth_key_file")))  # fmt: skip
MESHES = ("wireguard-native", "tailscale", "none")
DEFAULT_ECHO_SERVICES = (
    "https://checkip.amazonaws.com",
    "https://icanhazip.com",
    "https://api64.ipify.org",
    "https://ifconfig.me/ip",
)


def string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a string")
    return v


def choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        v = string(v).strip()
        if v not in choices:
            hint = suggest.closest(v, choices)
            more = f"; did you mean {hint!r}?" if hint else ""
            raise ValueError(f"must be {either(choices)}{more}")
        return v

    return check


def either(choices: Sequence[str]) -> str:
    """ "a or b", "a, b or c"."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def abs_path(v: Any) -> str:
    v = string(v)
    if not v.startswith("/"):
        raise ValueError("must be an absolute path")
    if "\0" in v or "\n" in v:
        raise ValueError("must be a path")
    return os.path.normpath(v)


def opt_abs_path(v: Any) -> str:
    return "" if v == "" else abs_path(v)


def https_url_host_port(v: Any) -> str:
    v = string(v).strip()
    if v == "":
        return ""
    try:
        u = urlsplit(v)
        port = u.port
    except ValueError:
        raise ValueError("must be https://host:port") from None
    if u.scheme != "https" or not u.hostname or port is None or u.path not in ("", "/"):
        raise ValueError("must be https://host:port")
    if u.query or u.fragment or u.username or u.password:
        raise ValueError("must be https://host:port (no path, query or credentials)")
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    return v.rstrip("/")


def http_base_url(v: Any) -> str:
    """``http(s)://host[:port]`` with nothing after it (metadata endpoint override)."""
    v = string(v).strip()
    if v == "":
        return ""
    try:
        u = urlsplit(v)
        u.port  # noqa: B018 — raises on a bad port
    except ValueError:
        raise ValueError("must be http://host[:port]") from None
    if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/"):
        raise ValueError("must be http://host[:port] with no path")
    return v.rstrip("/")


def https_urls(v: Any) -> tuple[str, ...]:
    out = []
    for item in str_list(v):
        u = urlsplit(item)
        if u.scheme != "https" or not u.hostname:
            raise ValueError(f"must be https:// URLs (got {item!r})")
        out.append(item)
    return tuple(out)


def url(v: Any) -> str:
    v = string(v).strip()
    if v == "":
        return ""
    u = urlsplit(v)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return v


# Booleans: a TOML boolean in the settings file (true/false, no quotes); in the environment one
# of these spellings, case-insensitive. Nothing else (no yes/no/on/off: a typo must not be true).
ENV_TRUE = ("true", "1")
ENV_FALSE = ("false", "0")


def boolean(v: Any) -> bool:
    """The environment's spellings (a flag or a variable); the file is held to TOML booleans by
    ``load`` before this runs."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ENV_TRUE:
            return True
        if s in ENV_FALSE:
            return False
    raise ValueError("must be true or false (in the environment also 1 or 0)")


def number(lo: float, hi: float, integer: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> Any:
        if isinstance(v, str):
            try:
                v = int(v) if integer else float(v)
            except ValueError:
                raise ValueError("must be a number") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("must be a number")
        if integer and not isinstance(v, int):
            raise ValueError("must be a whole number")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return int(v) if integer else float(v)

    return check


def str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):  # environment and flags give comma-separated text
        v = [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(i, str) for i in v):
        raise ValueError("must be a list of strings")
    return tuple(v)


def external_ips(v: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in str_list(v):
        try:
            out.append(addresses.normalise(item))
        except addresses.AddressError as e:
            raise ValueError(str(e)) from None
    fams = [addresses.family(a) for a in out]
    if len(out) != len(set(fams)):
        raise ValueError("at most one IPv4 and one IPv6 address")
    return tuple(addresses.order_v4_first(out))


def provider(v: Any) -> str:
    return choice("auto", "none", *PROVIDERS)(v)


_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def node_name(v: Any) -> str:
    v = string(v).strip()
    if v and (len(v) > 253 or not _NODE_NAME.match(v)):
        raise ValueError("must be a lower-case DNS name (a-z, 0-9, '-', '.')")
    return v


_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")


def unit(v: Any) -> str:
    v = string(v).strip()
    if v and not _UNIT.match(v):
        raise ValueError("must be a systemd unit name")
    return v[: -len(".service")] if v.endswith(".service") else v


def table(v: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise ValueError("must be a table")
    return dict(v)


def cidr_list(v: Any) -> tuple[str, ...]:
    out = []
    for item in str_list(v):
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=True)))
        except ValueError:
            raise ValueError(f"not a network in CIDR form: {item!r}") from None
    return tuple(out)


def tailscale_args(v: Any) -> tuple[str, ...]:
    """``tailscale up`` flags; they also travel in K3s's vpn-auth ``extraArgs``, which K3s splits
    on whitespace (so text from the environment is split on whitespace, not commas)."""
    if isinstance(v, str):
        v = v.split()
    if not isinstance(v, (list, tuple)) or not all(isinstance(i, str) for i in v):
        raise ValueError("must be a list of strings")
    for a in v:
        if not a.startswith("-") or any(c.isspace() for c in a):
            raise ValueError(
                f"each item must be one flag without whitespace (K3s splits vpn-auth extraArgs "
                f"on whitespace), got {a!r}"
            )
        if ",extraArgs=" in a:
            raise ValueError(f"must not contain ',extraArgs=' (got {a!r})")
        if a.lstrip("-").split("=", 1)[0] in ("auth-key", "authkey"):
            raise ValueError("must not carry an auth key; use auth_key_file")
    return tuple(v)


def tailscale_tag(v: Any) -> str:
    v = string(v).strip()
    if v and not re.match(r"^tag:[a-z0-9][a-z0-9-]*$", v):
        raise ValueError("must look like tag:k3s")
    return v


def interface_address(v: Any) -> str:
    v = string(v).strip()
    if v == "":
        return ""
    try:
        iface = ipaddress.ip_interface(v)
    except ValueError:
        raise ValueError("must be an address with prefix, such as 10.99.0.1/24") from None
    if "/" not in v:
        raise ValueError("must include the prefix length, such as 10.99.0.1/24")
    return str(iface)


_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def ifname(v: Any) -> str:
    v = string(v)
    if not _IFNAME.match(v):
        raise ValueError("must be an interface name of 1-15 characters")
    return v


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def dns_name(v: Any) -> str:
    """A fully qualified DNS name, stored without the trailing dot and in lower case."""
    v = string(v).strip().rstrip(".").lower()
    if v and (len(v) > 253 or "." not in v or not all(_DNS_LABEL.match(p) for p in v.split("."))):
        raise ValueError("must be a fully qualified DNS name such as k3s.example.com")
    return v


def dns_server(v: Any) -> str:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; stored as host:port."""
    v = string(v).strip()
    if v == "":
        return ""
    host, port = v, "53"
    if v.startswith("["):
        host, sep, rest = v[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("must be host:port, such as ns1.example.com:53 or [2001:db8::53]:53")
        port = rest[1:] or "53"
    elif v.count(":") == 1:
        host, _, port = v.partition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("port must be 1-65535")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not host or not all(_DNS_LABEL.match(p) for p in host.rstrip(".").split(".")):
            raise ValueError("must be host:port, such as ns1.example.com:53") from None
        return f"{host}:{int(port)}"
    return f"[{ip}]:{int(port)}" if ip.version == 6 else f"{ip}:{int(port)}"


TSIG_ALGORITHMS = (
    "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5",
)  # fmt: skip
REGISTRATION_PUBLISH = ("external", "ipv4", "ipv6", "underlay")


def backend(v: Any) -> str:
    v = string(v).strip()
    if v != "rfc2136" and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", v):
        raise ValueError("must be rfc2136 or a plugin as module:factory")
    return v


# ---------------------------------------------------------------------------------------------
# The schema


def peer(t: Mapping[str, Any], index: int) -> UnderlayPeer:
    """One [[underlay.peers]] table, checked."""
    where = f"peers[{index}]"
    allowed = {"public_key", "endpoint", "address", "keepalive", "name"}
    for k in t:
        if k not in allowed:
            hint = suggest.closest(k, allowed)
            raise ValueError(
                f"{where}: unknown key {k!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            )
    for k in ("public_key", "endpoint", "address"):
        if not isinstance(t.get(k), str) or not t[k]:
            raise ValueError(f"{where}: {k} is required")
    pk = t["public_key"]
    try:
        if len(base64.b64decode(pk, validate=True)) != 32:
            raise ValueError
    except ValueError:
        raise ValueError(f"{where}: public_key is not a WireGuard key (got {pk!r})") from None
    host, sep, port = t["endpoint"].rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{where}: endpoint must be host:port (got {t['endpoint']!r})")
    try:
        iface = ipaddress.ip_interface(t["address"])
    except ValueError:
        raise ValueError(f"{where}: address is not an IP address (got {t['address']!r})") from None
    keepalive = t.get("keepalive")
    if keepalive is not None and (
        isinstance(keepalive, bool) or not isinstance(keepalive, int) or not 0 <= keepalive <= 3600
    ):
        raise ValueError(f"{where}: keepalive must be 0-3600 seconds (got {keepalive!r})")
    name = t.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"{where}: name must be a string")
    return UnderlayPeer(pk, t["endpoint"], str(iface.ip), keepalive, name)


def peers(v: Any) -> tuple[Any, ...]:
    """[[underlay.peers]]: a list of tables, each checked by ``peer``."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(p, Mapping) for p in v):
        raise ValueError("must be a list of tables ([[underlay.peers]])")
    return tuple(peer(p, i) for i, p in enumerate(v))
