"""Settings: a TOML file, the saved ``k3snode.env``, the environment, command-line flags — into one
frozen Settings.

Precedence, lowest to highest: built-in defaults < the TOML file < ``k3snode.env`` beside it (what
``k3snode configure``/``apply`` saved from an earlier environment, ``envfile.py``) < environment <
flags. Secrets are never read from either file: a token or auth key comes from the environment or
from a 0600 file named by ``token_file`` / ``auth_key_file``.

Every setting is declared once in ``SCHEMA`` (section, key, type, default, check, environment
names); the loader, the error messages, the did-you-mean, the README table and the man page all read
it. Errors name where the bad value came from and the value itself, e.g.::

    /etc/k3snode/config.toml: [k3s] server: must be https://host:port (got 'k3s.example.com')
    environment K3S_URL: must be https://host:port (got 'k3s.example.com')
    --external-ip: not an IP address: '1.2.3' (got '1.2.3')

The K3s installer's variables are honoured so that cloud-init one-liners read naturally:
``K3S_URL``, ``K3S_TOKEN``, ``K3S_TOKEN_FILE``, ``K3S_NODE_NAME``. A token given as ``K3S_TOKEN``
is kept as a Secret and written by ``apply`` to a 0600 file; it is never put into config.yaml.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable
from urllib.parse import urlsplit

from k3snode import addresses, envfile
from k3snode.discovery.providers import IDS
from k3snode.secret import Secret

DEFAULT_CONFIG = "/etc/k3snode/config.toml"
# Where a value came from (Settings.sources), lowest layer first.
FROM_FILE, FROM_SAVED, FROM_ENV, FROM_FLAG = "file", "saved", "environment", "flag"
# A secret and the file setting that replaces it: a layer that sets one hides the other below it.
SECRET_PAIRS = ((("k3s", "token"), ("k3s", "token_file")),
                (("tailscale", "auth_key"), ("tailscale", "auth_key_file")))  # fmt: skip
PROVIDERS = IDS  # one list, in k3snode/discovery/providers/__init__.py
MESHES = ("wireguard-native", "tailscale", "none")
ROLES = ("server", "agent")
DEFAULT_ECHO_SERVICES = (
    "https://checkip.amazonaws.com",
    "https://icanhazip.com",
    "https://api64.ipify.org",
    "https://ifconfig.me/ip",
)


class SettingsError(Exception):
    """A user mistake in settings; the message is one line naming where, which key and what value."""


# ---------------------------------------------------------------------------------------------
# Checks: each takes the raw value and returns the normalised one, or raises ValueError(reason).


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("must be a string")
    return v


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        v = _str(v).strip()
        if v not in choices:
            hint = difflib.get_close_matches(v, choices, n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"must be {_either(choices)}{more}")
        return v

    return check


def _either(choices: Sequence[str]) -> str:
    """ "a or b", "a, b or c"."""
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _abs_path(v: Any) -> str:
    v = _str(v)
    if not v.startswith("/"):
        raise ValueError("must be an absolute path")
    if "\0" in v or "\n" in v:
        raise ValueError("must be a path")
    return os.path.normpath(v)


def _opt_abs_path(v: Any) -> str:
    return "" if v == "" else _abs_path(v)


def _https_url_host_port(v: Any) -> str:
    v = _str(v).strip()
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


def _http_base_url(v: Any) -> str:
    """``http(s)://host[:port]`` with nothing after it (metadata endpoint override)."""
    v = _str(v).strip()
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


def _https_urls(v: Any) -> tuple[str, ...]:
    out = []
    for item in _str_list(v):
        u = urlsplit(item)
        if u.scheme != "https" or not u.hostname:
            raise ValueError(f"must be https:// URLs (got {item!r})")
        out.append(item)
    return tuple(out)


def _url(v: Any) -> str:
    v = _str(v).strip()
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


def _bool(v: Any) -> bool:
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


def _number(lo: float, hi: float, integer: bool = False) -> Callable[[Any], float]:
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


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):  # environment and flags give comma-separated text
        v = [s.strip() for s in v.split(",") if s.strip()]
    if not isinstance(v, (list, tuple)) or not all(isinstance(i, str) for i in v):
        raise ValueError("must be a list of strings")
    return tuple(v)


def _external_ips(v: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in _str_list(v):
        try:
            out.append(addresses.normalise(item))
        except addresses.AddressError as e:
            raise ValueError(str(e)) from None
    fams = [addresses.family(a) for a in out]
    if len(out) != len(set(fams)):
        raise ValueError("at most one IPv4 and one IPv6 address")
    return tuple(addresses.order_v4_first(out))


def _provider(v: Any) -> str:
    return _choice("auto", "none", *PROVIDERS)(v)


_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _node_name(v: Any) -> str:
    v = _str(v).strip()
    if v and (len(v) > 253 or not _NODE_NAME.match(v)):
        raise ValueError("must be a lower-case DNS name (a-z, 0-9, '-', '.')")
    return v


_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")


def _unit(v: Any) -> str:
    v = _str(v).strip()
    if v and not _UNIT.match(v):
        raise ValueError("must be a systemd unit name")
    return v[: -len(".service")] if v.endswith(".service") else v


def _table(v: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise ValueError("must be a table")
    return dict(v)


def _cidr_list(v: Any) -> tuple[str, ...]:
    import ipaddress

    out = []
    for item in _str_list(v):
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=True)))
        except ValueError:
            raise ValueError(f"not a network in CIDR form: {item!r}") from None
    return tuple(out)


def _tailscale_args(v: Any) -> tuple[str, ...]:
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


def _tailscale_tag(v: Any) -> str:
    v = _str(v).strip()
    if v and not re.match(r"^tag:[a-z0-9][a-z0-9-]*$", v):
        raise ValueError("must look like tag:k3s")
    return v


def _interface_address(v: Any) -> str:
    import ipaddress

    v = _str(v).strip()
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


def _ifname(v: Any) -> str:
    v = _str(v)
    if not _IFNAME.match(v):
        raise ValueError("must be an interface name of 1-15 characters")
    return v


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _dns_name(v: Any) -> str:
    """A fully qualified DNS name, stored without the trailing dot and in lower case."""
    v = _str(v).strip().rstrip(".").lower()
    if v and (len(v) > 253 or "." not in v or not all(_DNS_LABEL.match(p) for p in v.split("."))):
        raise ValueError("must be a fully qualified DNS name such as k3s.example.com")
    return v


def _dns_server(v: Any) -> str:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; stored as host:port."""
    import ipaddress

    v = _str(v).strip()
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


def _backend(v: Any) -> str:
    v = _str(v).strip()
    if v != "rfc2136" and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", v):
        raise ValueError("must be rfc2136 or a plugin as module:factory")
    return v


# ---------------------------------------------------------------------------------------------
# The schema


@dataclass(frozen=True)
class Spec:
    """One setting: where it lives, its default, how it is checked and which variables set it."""

    section: str
    key: str
    default: Any
    check: Callable[[Any], Any]
    help: str
    env: tuple[str, ...] = ()
    secret: bool = False

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"

    @property
    def generic_env(self) -> str:
        return f"K3SNODE_{self.section.upper()}_{self.key.upper()}"


def _peers(v: Any) -> tuple[Any, ...]:
    """Underlay peers are checked by ``UnderlayPeer.from_table`` in the underlay section check."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(p, Mapping) for p in v):
        raise ValueError("must be a list of tables ([[underlay.peers]])")
    return tuple(UnderlayPeer.from_table(p, i) for i, p in enumerate(v))


SCHEMA: tuple[Spec, ...] = (
    # [node]
    Spec("node", "role", "", _choice("server", "agent"),
         "server or agent; unset: agent when a server URL is set, else server (as K3s's installer)",
         env=("K3SNODE_ROLE",)),
    Spec("node", "mesh", "wireguard-native", _choice(*MESHES),
         "how nodes in different networks reach each other: wireguard-native, tailscale or none",
         env=("K3SNODE_MESH",)),
    # [k3s]
    Spec("k3s", "server", "", _https_url_host_port,
         "URL of an existing server, https://host:port; agents and joining servers need it",
         env=("K3S_URL",)),
    Spec("k3s", "token_file", "", _opt_abs_path,
         "file holding the cluster token (written to config.yaml as token-file)",
         env=("K3S_TOKEN_FILE",)),
    Spec("k3s", "token", None, lambda v: Secret(_str(v)) if v else None,
         "the cluster token itself; environment only (K3S_TOKEN), stored by k3snode as a 0600 file",
         env=("K3S_TOKEN",), secret=True),
    Spec("k3s", "node_name", "", _node_name, "node-name for K3s", env=("K3S_NODE_NAME",)),
    Spec("k3s", "cluster_init", False, _bool,
         "first server of an embedded-etcd cluster (cluster-init: true)"),
    Spec("k3s", "config", "/etc/rancher/k3s/config.yaml", _abs_path,
         "the K3s config file k3snode writes; a config.yaml.d/NN-name.yaml drop-in works the same"),
    Spec("k3s", "unit", "", _unit, "K3s's systemd unit; unset: k3s for servers, k3s-agent for agents"),
    Spec("k3s", "options", {}, _table,
         "extra K3s options written verbatim, checked against K3s's flag list for the role"),
    # [discovery]
    Spec("discovery", "external_ips", (), _external_ips,
         "static external addresses (one IPv4 and/or one IPv6); a family set here is not discovered",
         env=("K3SNODE_EXTERNAL_IPS",)),
    Spec("discovery", "provider", "auto", _provider,
         "cloud provider: auto (cloud-init's answer, else DMI), none (no metadata service), or a provider id"),
    Spec("discovery", "metadata_endpoint", "", _http_base_url,
         "replaces scheme, host and port of the provider's metadata service (tests, odd networks)"),
    Spec("discovery", "dmi_dir", "/sys/class/dmi/id", _abs_path,
         "where DMI fields are read from"),
    Spec("discovery", "allow_imdsv1", False, _bool,
         "AWS: fall back to IMDSv1 (token-less) requests; off by default"),
    Spec("discovery", "echo", False, _bool,
         "ask HTTPS echo services when neither metadata nor interfaces give a public address"),
    Spec("discovery", "echo_services", DEFAULT_ECHO_SERVICES, _https_urls,
         "echo services to ask (at least two must agree)"),
    Spec("discovery", "timeout", 10.0, _number(0.5, 120),
         "upper bound in seconds for one whole discovery"),
    # [tailscale]
    Spec("tailscale", "auth_key_file", "", _opt_abs_path,
         "file holding the Tailscale auth key (never passed in argv)"),
    Spec("tailscale", "auth_key", None, lambda v: Secret(_str(v)) if v else None,
         "the Tailscale auth key itself; environment only, stored by k3snode as a 0600 file",
         secret=True),
    Spec("tailscale", "control_server_url", "", _url,
         "control server (e.g. headscale); unset: Tailscale's own"),
    Spec("tailscale", "hostname", "", _node_name, "hostname to register in the tailnet"),
    Spec("tailscale", "extra_args", (), _tailscale_args,
         "extra `tailscale up` flags (also handed to K3s in vpn-auth extraArgs)"),
    Spec("tailscale", "install", True, _bool, "install Tailscale when it is missing"),
    Spec("tailscale", "install_url", "https://tailscale.com/install.sh", _url,
         "where Tailscale's install script is fetched from"),
    Spec("tailscale", "pod_cidrs", ("10.42.0.0/16",), _cidr_list,
         "the cluster's pod CIDR(s), for `k3snode tailscale-policy`"),
    Spec("tailscale", "tag", "tag:k3s", _tailscale_tag, "the tailnet tag of the cluster's nodes"),
    Spec("tailscale", "timeout", 60.0, _number(1, 3600),
         "seconds to wait for tailscaled to answer and for `tailscale up` to reach Running"),
    # [daemon]
    Spec("daemon", "debounce", 1.0, _number(0, 60),
         "seconds to wait after a network event before a pass"),
    Spec("daemon", "poll_interval", 20.0, _number(5, 86400),
         "seconds between metadata polls (±10 % jitter) for changes no local event announces"),
    Spec("daemon", "confirm_delay", 3.0, _number(0, 600),
         "a new address must be seen again after this many seconds before K3s is touched"),
    Spec("daemon", "min_restart_interval", 60.0, _number(0, 86400),
         "at most one K3s restart per this many seconds"),
    Spec("daemon", "boot_wait", 30.0, _number(0, 3600),
         "at start, become ready after this many seconds even if discovery has not finished"),
    Spec("daemon", "restart_timeout", 120.0, _number(1, 3600),
         "seconds K3s may take to become active after a restart before it is reported failed"),
    # [health]
    Spec("health", "listen", "127.0.0.1", lambda v: addresses.normalise(_str(v)),
         "address of the local health endpoint"),
    Spec("health", "port", 9181, _number(0, 65535, integer=True),
         "port of /healthz and /metrics; 0 turns the endpoint off"),
    Spec("health", "grace", 120.0, _number(0, 86400),
         "seconds a check may fail before health turns red (one failed poll is not an outage)"),
    # [paths]
    Spec("paths", "state_dir", "/var/lib/k3snode", _abs_path,
         "k3snode's state: managed keys, token and vpn-auth files, keys"),
    Spec("paths", "run_dir", "/run/k3snode", _abs_path, "status file of the running daemon"),
    # [underlay]
    Spec("underlay", "enabled", False, _bool,
         "a WireGuard network among servers, so embedded etcd can span clouds"),
    Spec("underlay", "interface", "k3snode-ul", _ifname, "the underlay's interface name"),
    Spec("underlay", "address", "", _interface_address,
         "this node's underlay address with prefix, e.g. 10.99.0.1/24"),
    Spec("underlay", "listen_port", 51822, _number(1, 65535, integer=True),
         "UDP port of the underlay (51820/51821 belong to flannel)"),
    Spec("underlay", "private_key_file", "/var/lib/k3snode/underlay.key", _abs_path,
         "private key, generated on first start (0600)"),
    Spec("underlay", "userspace", "auto", _choice("auto", "never", "always"),
         "use wireguard-go when the kernel has no WireGuard (auto), never, or always"),
    Spec("underlay", "keepalive", 25, _number(0, 3600, integer=True),
         "persistent keepalive (seconds) for peers that do not set their own"),
    Spec("underlay", "resolve_interval", 60.0, _number(1, 86400),
         "seconds between re-resolving peers' DNS endpoints"),
    Spec("underlay", "peers", (), _peers, "the underlay's peers ([[underlay.peers]])"),
    # [registration]
    Spec("registration", "name", "", _dns_name,
         "the cluster's registration DNS name: servers keep their addresses in it, agents join "
         "by it"),
    Spec("registration", "server", "", _dns_server,
         "the authoritative DNS server that takes RFC 2136 updates, host[:port] (port 53)"),
    Spec("registration", "zone", "", _dns_name,
         "the zone holding the name; unset: the server is asked (SOA)"),
    Spec("registration", "key_file", "", _opt_abs_path,
         "TSIG key file (mode 0600): a BIND key clause, as tsig-keygen writes, or "
         "[algorithm:]name:secret"),
    Spec("registration", "algorithm", "hmac-sha256", _choice(*TSIG_ALGORITHMS),
         "TSIG algorithm when the key file does not name one"),
    Spec("registration", "ttl", 60, _number(1, 86400, integer=True),
         "TTL in seconds of the published A/AAAA records"),
    Spec("registration", "publish", "external", _choice(*REGISTRATION_PUBLISH),
         "what to publish: external (IPv4 and IPv6), ipv4, ipv6, or underlay (its address)"),
    Spec("registration", "timeout", 5.0, _number(0.5, 60),
         "upper bound in seconds for one update (all its queries)"),
    Spec("registration", "retry_max", 300.0, _number(1, 86400),
         "longest wait between retries of a failed update (exponential backoff with jitter)"),
    Spec("registration", "backend", "rfc2136", _backend,
         "rfc2136, or module:factory of a plugin for a DNS API (docs/registration.md)"),
)  # fmt: skip

SECTIONS = tuple(dict.fromkeys(s.section for s in SCHEMA))
_BY_NAME = {(s.section, s.key): s for s in SCHEMA}


# ---------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class UnderlayPeer:
    public_key: str
    endpoint: str  # host:port, host may be a DNS name
    address: str  # underlay address with prefix (/32 or /128 added when missing)
    keepalive: int | None = None
    name: str = ""

    @classmethod
    def from_table(cls, t: Mapping[str, Any], index: int) -> UnderlayPeer:
        import base64
        import ipaddress

        where = f"peers[{index}]"
        allowed = {"public_key", "endpoint", "address", "keepalive", "name"}
        for k in t:
            if k not in allowed:
                hint = difflib.get_close_matches(k, allowed, n=1)
                raise ValueError(
                    f"{where}: unknown key {k!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
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
            raise ValueError(
                f"{where}: address is not an IP address (got {t['address']!r})"
            ) from None
        keepalive = t.get("keepalive")
        if keepalive is not None and (
            isinstance(keepalive, bool)
            or not isinstance(keepalive, int)
            or not 0 <= keepalive <= 3600
        ):
            raise ValueError(f"{where}: keepalive must be 0-3600 seconds (got {keepalive!r})")
        name = t.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"{where}: name must be a string")
        return cls(pk, t["endpoint"], str(iface.ip), keepalive, name)


@dataclass(frozen=True)
class NodeSettings:
    role: str
    mesh: str


@dataclass(frozen=True)
class K3sSettings:
    server: str
    token_file: str
    token: Secret | None
    node_name: str
    cluster_init: bool
    config: str
    unit: str  # resolved: never empty
    options: dict[str, Any]


@dataclass(frozen=True)
class DiscoverySettings:
    external_ips: tuple[str, ...]
    provider: str
    metadata_endpoint: str
    dmi_dir: str
    allow_imdsv1: bool
    echo: bool
    echo_services: tuple[str, ...]
    timeout: float

    @property
    def static_ipv4(self) -> str | None:
        return next((a for a in self.external_ips if addresses.family(a) == 4), None)

    @property
    def static_ipv6(self) -> str | None:
        return next((a for a in self.external_ips if addresses.family(a) == 6), None)


@dataclass(frozen=True)
class TailscaleSettings:
    auth_key_file: str  # resolved: <state_dir>/tailscale.key when the key came as auth_key
    auth_key: Secret | None
    control_server_url: str
    hostname: str
    extra_args: tuple[str, ...]
    install: bool
    install_url: str
    pod_cidrs: tuple[str, ...]
    tag: str
    timeout: float


@dataclass(frozen=True)
class DaemonSettings:
    debounce: float
    poll_interval: float
    confirm_delay: float
    min_restart_interval: float
    boot_wait: float
    restart_timeout: float


@dataclass(frozen=True)
class HealthSettings:
    listen: str
    port: int
    grace: float


@dataclass(frozen=True)
class PathsSettings:
    state_dir: str
    run_dir: str


@dataclass(frozen=True)
class UnderlaySettings:
    enabled: bool
    interface: str
    address: str
    listen_port: int
    private_key_file: str
    userspace: str
    keepalive: int
    resolve_interval: float
    peers: tuple[UnderlayPeer, ...]


@dataclass(frozen=True)
class RegistrationSettings:
    name: str
    server: str  # host:port, IPv6 in brackets
    zone: str
    key_file: str
    algorithm: str
    ttl: int
    publish: str
    timeout: float
    retry_max: float
    backend: str


@dataclass(frozen=True)
class Settings:
    """Everything k3snode was told. ``origins`` maps ``"section.key"`` to where the value came from."""

    file: str | None
    node: NodeSettings
    k3s: K3sSettings
    discovery: DiscoverySettings
    tailscale: TailscaleSettings
    daemon: DaemonSettings
    health: HealthSettings
    paths: PathsSettings
    underlay: UnderlaySettings
    registration: RegistrationSettings
    origins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # "section.key" -> FROM_FILE / FROM_SAVED / FROM_ENV / FROM_FLAG, for every value not a default
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    env_file: str = field(default="", compare=False)  # the k3snode.env read (or to be written)

    @property
    def role(self) -> str:
        return self.node.role

    @property
    def role_named(self) -> bool:
        """The role was set by name ([node] role, K3SNODE_ROLE, --role), not derived."""
        return "node.role" in self.sources

    @property
    def configured(self) -> bool:
        """Something says what this node is: a role by name, a server URL or cluster_init. Else
        the role is only K3s's default (server), which the daemon never writes on its own."""
        return self.role_named or bool(self.k3s.server) or self.k3s.cluster_init

    def not_configured(self) -> str:
        """The daemon's one-line state when not ``configured``: why, and what to do."""
        settings_file = self.file or DEFAULT_CONFIG
        return (
            f"not configured: no role, server URL or cluster_init in {settings_file}, "
            f"{self.env_file or envfile.NAME}, the environment or flags; run the installer with "
            "K3S_URL and K3S_TOKEN, or `K3S_URL=… K3S_TOKEN=… k3snode configure`, or write "
            f"{settings_file}, then `systemctl reload k3snode`"
        )

    @property
    def mesh(self) -> str:
        return self.node.mesh

    @property
    def token_path(self) -> str:
        """The token-file K3s is pointed at: the user's file, or k3snode's copy of K3S_TOKEN."""
        if self.k3s.token_file:
            return self.k3s.token_file
        if self.k3s.token is not None:
            return os.path.join(self.paths.state_dir, "token")
        return ""

    @property
    def auth_key_store(self) -> str:
        """Where k3snode keeps an auth key given as K3SNODE_TAILSCALE_AUTH_KEY."""
        return os.path.join(self.paths.state_dir, "tailscale.key")

    @property
    def vpn_auth_path(self) -> str:
        return os.path.join(self.paths.state_dir, "vpn-auth")

    @property
    def registers(self) -> bool:
        """This node keeps the registration name current (a server with a name set)."""
        return self.role == "server" and bool(self.registration.name)

    @property
    def state_file(self) -> str:
        return os.path.join(self.paths.state_dir, "state.json")

    @property
    def status_file(self) -> str:
        return os.path.join(self.paths.run_dir, "status.json")

    def where(self, section: str, key: str) -> str:
        """Human label of where ``section.key`` was set, for error messages."""
        return self.origins.get(f"{section}.{key}", f"[{section}] {key}")


_SECTION_TYPES = {
    "node": NodeSettings, "k3s": K3sSettings, "discovery": DiscoverySettings,
    "tailscale": TailscaleSettings, "daemon": DaemonSettings, "health": HealthSettings,
    "paths": PathsSettings, "underlay": UnderlaySettings,
    "registration": RegistrationSettings,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Loading


def read_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise SettingsError(f"{path}: cannot read (permission denied)") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a directory, not a settings file") from None
    except OSError as e:
        raise SettingsError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: invalid TOML: {e}") from None


def loose_permissions(path: str) -> list[str]:
    """Why others than root (or the user running k3snode) could change the settings file: it or
    its directory writable by group or others (without the sticky bit), or owned by someone else.
    k3snode runs as root and writes what this file says, so such a file is a way to root."""
    problems = []
    me = os.geteuid()
    for what, p in (
        ("settings file", path),
        ("its directory", os.path.dirname(os.path.abspath(path))),
    ):
        try:
            st = os.stat(p)
        except OSError:
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            continue  # /dev/null and the like: nothing to write into
        mode = stat.S_IMODE(st.st_mode)
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if mode & 0o022 and not sticky_dir:
            problems.append(f"{p}: {what} is writable by others (mode {mode:04o}); chmod go-w it")
        elif st.st_uid not in (0, me):
            problems.append(f"{p}: {what} is owned by uid {st.st_uid}, not root")
    return problems


def _did_you_mean(word: str, candidates: list[str]) -> str:
    hint = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {hint[0]}?)" if hint else ""


def _walk_file(path: str, data: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, str]]:
    """Flatten the TOML document into ``{(section, key): (value, origin)}``; unknown keys are errors."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    all_names = [f"[{s.section}] {s.key}" for s in SCHEMA]
    for top, value in data.items():
        if top not in SECTIONS:
            if isinstance(value, dict):
                hint = difflib.get_close_matches(top, SECTIONS, n=1)
                more = f" (did you mean [{hint[0]}]?)" if hint else ""
                raise SettingsError(f"{path}: unknown section [{top}]{more}")
            owners = [f"[{s.section}] {s.key}" for s in SCHEMA if s.key == top]
            hint = f" (did you mean {owners[0]}?)" if owners else _did_you_mean(top, all_names)
            raise SettingsError(f"{path}: unknown key {top!r} outside any section{hint}")
        if not isinstance(value, dict):
            raise SettingsError(f"{path}: [{top}] must be a table (got {value!r})")
        keys = [s.key for s in SCHEMA if s.section == top]
        for key, v in value.items():
            if key not in keys:
                alt = key.replace("-", "_")
                hint = f" (did you mean {alt}?)" if alt in keys else _did_you_mean(key, keys)
                raise SettingsError(f"{path}: unknown key [{top}] {key}{hint}")
            if _BY_NAME[(top, key)].secret:
                raise SettingsError(f"{path}: [{top}] {key}: {_secret_hint(top, key)}")
            out[(top, key)] = (v, f"{path}: [{top}] {key}")
    return out


def _secret_hint(section: str, key: str) -> str:
    if (section, key) == ("k3s", "token"):
        return (
            "the token is never read from a settings file; put it in a 0600 file and set "
            "[k3s] token_file, or give it as K3S_TOKEN"
        )
    return (
        f"a secret is never read from a settings file; put it in a 0600 file and set "
        f"[{section}] {key}_file, or give it as {_BY_NAME[(section, key)].generic_env}"
    )


def _walk_env(
    env: Mapping[str, str], saved: str | None = None
) -> dict[tuple[str, str], tuple[Any, str]]:
    """The setting variables in ``env``; ``saved`` names a k3snode.env they were read from (where
    every name must be a setting and no secret may be)."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    for spec in SCHEMA:
        if spec.key in ("options", "peers"):
            continue  # tables are file-only
        for name in (spec.generic_env, *spec.env):
            if name in env and env[name] != "":
                if saved is not None and spec.secret:
                    instead = (
                        "K3S_TOKEN_FILE" if spec.key == "token" else spec.generic_env + "_FILE"
                    )
                    raise SettingsError(
                        f"{saved}: {name}: secrets are never kept in {envfile.NAME}; use {instead}"
                    )
                label = f"{saved}: {name}" if saved is not None else f"environment {name}"
                out[(spec.section, spec.key)] = (env[name], label)
    # A K3SNODE_* variable that is not a setting is most likely a typo.
    known = {n for s in SCHEMA for n in (s.generic_env, *s.env)}
    for name in env:
        if saved is not None and name not in known:
            raise SettingsError(
                f"{saved}: {name}: not a k3snode setting" + _did_you_mean(name, sorted(known))
            )
        if name.startswith("K3SNODE_") and name not in known | {"K3SNODE_CONFIG"}:
            raise SettingsError(
                f"environment {name}: not a k3snode setting" + _did_you_mean(name, sorted(known))
            )
    for secret, file_key in SECRET_PAIRS:
        if secret in out and file_key in out:
            where = saved or "environment"
            raise SettingsError(
                f"{where}: set {out[secret][1].split()[-1]} or {out[file_key][1].split()[-1]}, "
                "not both"
            )
    return out


def _stack(
    layered: dict[tuple[str, str], tuple[Any, str]],
    sources: dict[str, str],
    layer: dict[tuple[str, str], tuple[Any, str]],
    name: str,
) -> None:
    """Put ``layer`` on top: a secret or its file setting in it hides the other one below."""
    for pair in SECRET_PAIRS:
        for mine, other in (pair, pair[::-1]):
            if mine in layer and other not in layer:
                layered.pop(other, None)
                sources.pop(f"{other[0]}.{other[1]}", None)
    layered.update(layer)
    sources.update({f"{k[0]}.{k[1]}": name for k in layer})


def load(
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], Any] | None = None,
    override_names: Mapping[tuple[str, str], str] | None = None,
) -> Settings:
    """Build Settings from file, environment and flag overrides; raise SettingsError on mistakes.

    ``config_path`` None means: ``K3SNODE_CONFIG`` or the default path, either of which may be
    missing. A path given explicitly (``--config``) must exist.
    """
    env = os.environ if env is None else env
    overrides = overrides or {}
    override_names = override_names or {}
    explicit = config_path is not None or bool(env.get("K3SNODE_CONFIG"))
    path = config_path or env.get("K3SNODE_CONFIG") or DEFAULT_CONFIG
    layered: dict[tuple[str, str], tuple[Any, str]] = {}
    sources: dict[str, str] = {}
    file_used: str | None = None
    try:
        os.stat(path)
    except PermissionError:  # a directory on the way is closed to this user: not "missing"
        raise SettingsError(f"{path}: cannot read (permission denied)") from None
    except OSError:
        pass
    if os.path.exists(path) or explicit:
        if not os.path.exists(path):
            src = "--config" if config_path is not None else "environment K3SNODE_CONFIG"
            raise SettingsError(f"{src}: settings file {path} does not exist")
        _stack(layered, sources, _walk_file(path, read_toml(path)), FROM_FILE)
        file_used = path
        for problem in loose_permissions(path):
            logging.getLogger("k3snode").warning("warning: %s", problem)
    env_path = envfile.path_for(path)
    try:
        saved = envfile.read(env_path)
    except envfile.EnvFileError as e:
        raise SettingsError(str(e)) from None
    if saved is not None:
        _stack(layered, sources, _walk_env(saved, saved=env_path), FROM_SAVED)
    _stack(layered, sources, _walk_env(env), FROM_ENV)
    flags = {}
    for key, value in overrides.items():
        if value is not None:
            flags[key] = (value, override_names.get(key, f"--{key[1].replace('_', '-')}"))
    _stack(layered, sources, flags, FROM_FLAG)

    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    origins: dict[str, str] = {}
    for spec in SCHEMA:
        raw, origin = layered.get((spec.section, spec.key), (spec.default, ""))
        if (spec.section, spec.key) in layered:
            try:
                _no_control_characters(raw)
                from_file = file_used is not None and origin.startswith(f"{file_used}: [")
                if spec.check is _bool and from_file and not isinstance(raw, bool):
                    raise ValueError("must be true or false (a TOML boolean, without quotes)")
                value = spec.check(raw)
            except ValueError as e:
                shown = "********" if spec.secret else _show(raw)
                raise SettingsError(f"{origin}: {e} (got {shown})") from None
            origins[f"{spec.section}.{spec.key}"] = origin
        else:
            value = raw
        values[spec.section][spec.key] = value
    settings = _finish(file_used, values, origins)
    return replace(settings, sources=sources, env_file=env_path)


def _no_control_characters(raw: Any) -> None:
    """Raise ValueError when a string in ``raw`` holds a control character. Checked on the raw
    value, before any parser sees it: ``urlsplit`` drops tab/CR/LF and ``$`` matches before a
    final newline, so a check after parsing would pass ``https://1.2.\t3.4:6443``."""
    if isinstance(raw, str):
        bad = next((c for c in raw if unicodedata.category(c) == "Cc"), None)
        if bad is not None:
            raise ValueError(f"contains the control character {bad!r}")
    elif isinstance(raw, (list, tuple)):
        for item in raw:
            _no_control_characters(item)
    elif isinstance(raw, dict):
        for k, v in raw.items():
            _no_control_characters(k)
            _no_control_characters(v)


def _show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "…"


def _finish(path: str | None, v: dict[str, dict[str, Any]], origins: dict[str, str]) -> Settings:
    """Cross-field rules and derived defaults."""
    k3s = v["k3s"]
    node = v["node"]
    where = lambda s, k: origins.get(f"{s}.{k}", f"[{s}] {k}")  # noqa: E731

    if not node["role"]:
        node["role"] = "agent" if k3s["server"] else "server"
        if k3s["server"]:  # errors about the derived role point at what made it an agent
            origins["node.role"] = origins["k3s.server"]
    role = node["role"]
    if not k3s["unit"]:
        k3s["unit"] = "k3s" if role == "server" else "k3s-agent"
    has_token = bool(k3s["token_file"]) or k3s["token"] is not None
    if role == "agent":
        if not k3s["server"]:
            raise SettingsError(
                f"{where('node', 'role')}: an agent needs a server URL: set [k3s] "
                "server, K3S_URL or --server (got role 'agent' with no server)"
            )
        if not has_token:
            raise SettingsError(
                f"{where('node', 'role')}: an agent needs a token: set [k3s] "
                "token_file, K3S_TOKEN_FILE, K3S_TOKEN or --token-file "
                "(got role 'agent' with no token)"
            )
        if k3s["cluster_init"]:
            raise SettingsError(
                f"{where('k3s', 'cluster_init')}: only a server can initialise a "
                "cluster (got cluster_init = true for role 'agent')"
            )
    if role == "server" and k3s["server"] and not has_token:
        raise SettingsError(
            f"{where('k3s', 'server')}: a server joining {k3s['server']} needs a "
            "token: set [k3s] token_file, K3S_TOKEN_FILE or K3S_TOKEN"
        )
    if k3s["cluster_init"] and k3s["server"]:
        raise SettingsError(
            f"{where('k3s', 'cluster_init')}: cluster_init is for the first server; "
            f"a server joining {k3s['server']} must not set it"
        )
    ts = v["tailscale"]
    if ts["auth_key"] is not None and not ts["auth_key_file"]:
        ts["auth_key_file"] = os.path.join(v["paths"]["state_dir"], "tailscale.key")
    if node["mesh"] == "tailscale" and not ts["auth_key_file"]:
        raise SettingsError(
            f"{where('node', 'mesh')}: mesh 'tailscale' needs [tailscale] "
            "auth_key_file or K3SNODE_TAILSCALE_AUTH_KEY (got mesh 'tailscale' with no auth key)"
        )
    ul = v["underlay"]
    if ul["enabled"] and not ul["address"]:
        raise SettingsError(
            f"{where('underlay', 'enabled')}: the underlay needs [underlay] address "
            "(got enabled = true with no address)"
        )
    if ul["enabled"] and node["mesh"] == "tailscale" and role == "server":
        # K3s's VPN integration replaces node-ip with the Tailscale addresses before the server
        # reads it (pkg/executor/embed/embed.go New, since k3s-io/k3s f891548e): etcd would
        # advertise and peer on Tailscale, never on the underlay.
        raise SettingsError(
            f"{where('underlay', 'enabled')}: a server cannot use the underlay with mesh "
            "'tailscale': K3s then replaces node-ip with the Tailscale address, so etcd would "
            "peer over Tailscale, not the underlay; use mesh 'wireguard-native' or turn the "
            "underlay off (got mesh 'tailscale' and underlay enabled on a server)"
        )

    _check_registration(v, role, where)

    from k3snode.k3s import options as k3s_options

    checked = {}
    for key, value in k3s["options"].items():
        label = f"{path}: [k3s.options] {key}" if path else f"[k3s.options] {key}"
        try:
            checked[key] = k3s_options.check_user_option(
                role, node["mesh"], key, value, underlay=ul["enabled"]
            )
        except ValueError as e:
            raise SettingsError(f"{label}: {e} (got {_show(value)})") from None
    k3s["options"] = checked

    sections = {name: cls(**v[name]) for name, cls in _SECTION_TYPES.items()}
    return Settings(file=path, origins=origins, **sections)


def _check_registration(v: dict[str, dict[str, Any]], role: str, where: Callable) -> None:
    """A server with a registration name needs what its backend needs; agents only read the name."""
    reg = v["registration"]
    if role != "server" or not reg["name"]:
        return
    if reg["backend"] == "rfc2136":
        for key in ("server", "key_file"):
            if not reg[key]:
                raise SettingsError(
                    f"{where('registration', 'name')}: publishing {reg['name']} needs "
                    f"[registration] {key} (got name {reg['name']!r} with no {key})"
                )
    if reg["publish"] == "underlay" and not v["underlay"]["enabled"]:
        raise SettingsError(
            f'{where("registration", "publish")}: publish = "underlay" needs the underlay '
            "([underlay] enabled = true)"
        )


def schema_rows() -> list[tuple[str, str, str, str]]:
    """(name, default, environment, help) for the README and man page."""
    rows = []
    for s in SCHEMA:
        default = s.default
        if isinstance(default, tuple):
            default = list(default)
        shown = "" if default in ("", None, {}, []) else repr(default).replace("'", '"')
        env = ", ".join((s.generic_env, *s.env)) if s.key not in ("options", "peers") else ""
        rows.append((s.name, shown, env, s.help))
    return rows


def spec(section: str, key: str) -> Spec:
    return _BY_NAME[(section, key)]


def as_dict(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with secrets masked (for `k3snode status` and debugging)."""
    out: dict[str, Any] = {"file": settings.file}
    for name in SECTIONS:
        section = getattr(settings, name)
        out[name] = {}
        for f in fields(section):
            val = getattr(section, f.name)
            if isinstance(val, Secret):
                val = "********"
            elif isinstance(val, tuple):
                val = [p.__dict__ if isinstance(p, UnderlayPeer) else p for p in val]
            out[name][f.name] = val
    return out
