"""Every setting declared once: section, key, default, check, environment names, help.

The loader (``load.py``), its error messages and did-you-mean, the README table and the man page
(``scripts/settings-table.py``) all read ``SCHEMA``; the checks themselves are in ``checks.py``.
"""

from __future__ import annotations

from typing import Any, Callable

from k3snode import addresses
from k3snode.config.checks import (
    DEFAULT_ECHO_SERVICES,
    MESHES,
    REGISTRATION_PUBLISH,
    TSIG_ALGORITHMS,
    abs_path,
    backend,
    boolean,
    choice,
    cidr_list,
    dns_name,
    dns_server,
    external_ips,
    http_base_url,
    https_url_host_port,
    https_urls,
    ifname,
    interface_address,
    node_name,
    number,
    opt_abs_path,
    peers,
    provider,
    string,
    table,
    tailscale_args,
    tailscale_tag,
    unit,
    url,
)
from k3snode.record import record
from k3snode.secret import Secret


@record
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


SCHEMA: tuple[Spec, ...] = (
    # [node]
    Spec("node", "role", "", choice("server", "agent"),
         "server or agent; unset: agent when a server URL is set, else server (as K3s's installer)",
         env=("K3SNODE_ROLE",)),
    Spec("node", "mesh", "wireguard-native", choice(*MESHES),
         "how nodes in different networks reach each other: wireguard-native, tailscale or none",
         env=("K3SNODE_MESH",)),
    # [k3s]
    Spec("k3s", "server", "", https_url_host_port,
         "URL of an existing server, https://host:port; agents and joining servers need it",
         env=("K3S_URL",)),
    Spec("k3s", "token_file", "", opt_abs_path,
         "file holding the cluster token (written to config.yaml as token-file)",
         env=("K3S_TOKEN_FILE",)),
    Spec("k3s", "token", None, lambda v: Secret(string(v)) if v else None,
         "the cluster token itself; environment only (K3S_TOKEN), stored by k3snode as a 0600 file",
         env=("K3S_TOKEN",), secret=True),
    Spec("k3s", "node_name", "", node_name, "node-name for K3s", env=("K3S_NODE_NAME",)),
    Spec("k3s", "cluster_init", False, boolean,
         "first server of an embedded-etcd cluster (cluster-init: true)"),
    Spec("k3s", "config", "/etc/rancher/k3s/config.yaml", abs_path,
         "the K3s config file k3snode writes; a config.yaml.d/NN-name.yaml drop-in works the same"),
    Spec("k3s", "unit", "", unit, "K3s's systemd unit; unset: k3s for servers, k3s-agent for agents"),
    Spec("k3s", "options", {}, table,
         "extra K3s options written verbatim, checked against K3s's flag list for the role"),
    # [discovery]
    Spec("discovery", "external_ips", (), external_ips,
         "static external addresses (one IPv4 and/or one IPv6); a family set here is not discovered",
         env=("K3SNODE_EXTERNAL_IPS",)),
    Spec("discovery", "provider", "auto", provider,
         "cloud provider: auto (cloud-init's answer, else DMI), none (no metadata service), or a provider id"),
    Spec("discovery", "metadata_endpoint", "", http_base_url,
         "replaces scheme, host and port of the provider's metadata service (tests, odd networks)"),
    Spec("discovery", "dmi_dir", "/sys/class/dmi/id", abs_path,
         "where DMI fields are read from"),
    Spec("discovery", "allow_imdsv1", False, boolean,
         "AWS: fall back to IMDSv1 (token-less) requests; off by default"),
    Spec("discovery", "echo", False, boolean,
         "ask HTTPS echo services when neither metadata nor interfaces give a public address"),
    Spec("discovery", "echo_services", DEFAULT_ECHO_SERVICES, https_urls,
         "echo services to ask (at least two must agree)"),
    Spec("discovery", "timeout", 10.0, number(0.5, 120),
         "upper bound in seconds for one whole discovery"),
    # [tailscale]
    Spec("tailscale", "auth_key_file", "", opt_abs_path,
         "file holding the Tailscale auth key (never passed in argv)"),
    Spec("tailscale", "auth_key", None, lambda v: Secret(string(v)) if v else None,
         "the Tailscale auth key itself; environment only, stored by k3snode as a 0600 file",
         secret=True),
    Spec("tailscale", "control_server_url", "", url,
         "control server (e.g. headscale); unset: Tailscale's own"),
    Spec("tailscale", "hostname", "", node_name, "hostname to register in the tailnet"),
    Spec("tailscale", "extra_args", (), tailscale_args,
         "extra `tailscale up` flags (also handed to K3s in vpn-auth extraArgs)"),
    Spec("tailscale", "install", True, boolean, "install Tailscale when it is missing"),
    Spec("tailscale", "install_url", "https://tailscale.com/install.sh", url,
         "where Tailscale's install script is fetched from"),
    Spec("tailscale", "pod_cidrs", ("10.42.0.0/16",), cidr_list,
         "the cluster's pod CIDR(s), for `k3snode tailscale-policy`"),
    Spec("tailscale", "tag", "tag:k3s", tailscale_tag, "the tailnet tag of the cluster's nodes"),
    Spec("tailscale", "timeout", 60.0, number(1, 3600),
         "seconds to wait for tailscaled to answer and for `tailscale up` to reach Running"),
    # [daemon]
    Spec("daemon", "debounce", 1.0, number(0, 60),
         "seconds to wait after a network event before a pass"),
    Spec("daemon", "poll_interval", 20.0, number(5, 86400),
         "seconds between metadata polls (±10 % jitter) for changes no local event announces"),
    Spec("daemon", "confirm_delay", 3.0, number(0, 600),
         "a new address must be seen again after this many seconds before K3s is touched"),
    Spec("daemon", "min_restart_interval", 60.0, number(0, 86400),
         "at most one K3s restart per this many seconds"),
    Spec("daemon", "boot_wait", 30.0, number(0, 3600),
         "at start, become ready after this many seconds even if discovery has not finished"),
    Spec("daemon", "restart_timeout", 120.0, number(1, 3600),
         "seconds K3s may take to become active after a restart before it is reported failed"),
    # [health]
    Spec("health", "listen", "127.0.0.1", lambda v: addresses.normalise(string(v)),
         "address of the local health endpoint"),
    Spec("health", "port", 9181, number(0, 65535, integer=True),
         "port of /healthz and /metrics; 0 turns the endpoint off"),
    Spec("health", "grace", 120.0, number(0, 86400),
         "seconds a check may fail before health turns red (one failed poll is not an outage)"),
    # [paths]
    Spec("paths", "state_dir", "/var/lib/k3snode", abs_path,
         "k3snode's state: managed keys, token and vpn-auth files, keys"),
    Spec("paths", "run_dir", "/run/k3snode", abs_path, "status file of the running daemon"),
    # [underlay]
    Spec("underlay", "enabled", False, boolean,
         "a WireGuard network among servers, so embedded etcd can span clouds"),
    Spec("underlay", "interface", "k3snode-ul", ifname, "the underlay's interface name"),
    Spec("underlay", "address", "", interface_address,
         "this node's underlay address with prefix, e.g. 10.99.0.1/24"),
    Spec("underlay", "listen_port", 51822, number(1, 65535, integer=True),
         "UDP port of the underlay (51820/51821 belong to flannel)"),
    Spec("underlay", "private_key_file", "/var/lib/k3snode/underlay.key", abs_path,
         "private key, generated on first start (0600)"),
    Spec("underlay", "userspace", "auto", choice("auto", "never", "always"),
         "use wireguard-go when the kernel has no WireGuard (auto), never, or always"),
    Spec("underlay", "keepalive", 25, number(0, 3600, integer=True),
         "persistent keepalive (seconds) for peers that do not set their own"),
    Spec("underlay", "resolve_interval", 60.0, number(1, 86400),
         "seconds between re-resolving peers' DNS endpoints"),
    Spec("underlay", "peers", (), peers, "the underlay's peers ([[underlay.peers]])"),
    # [registration]
    Spec("registration", "name", "", dns_name,
         "the cluster's registration DNS name: servers keep their addresses in it, agents join "
         "by it"),
    Spec("registration", "server", "", dns_server,
         "the authoritative DNS server that takes RFC 2136 updates, host[:port] (port 53)"),
    Spec("registration", "zone", "", dns_name,
         "the zone holding the name; unset: the server is asked (SOA)"),
    Spec("registration", "key_file", "", opt_abs_path,
         "TSIG key file (mode 0600): a BIND key clause, as tsig-keygen writes, or "
         "[algorithm:]name:secret"),
    Spec("registration", "algorithm", "hmac-sha256", choice(*TSIG_ALGORITHMS),
         "TSIG algorithm when the key file does not name one"),
    Spec("registration", "ttl", 60, number(1, 86400, integer=True),
         "TTL in seconds of the published A/AAAA records"),
    Spec("registration", "publish", "external", choice(*REGISTRATION_PUBLISH),
         "what to publish: external (IPv4 and IPv6), ipv4, ipv6, or underlay (its address)"),
    Spec("registration", "timeout", 5.0, number(0.5, 60),
         "upper bound in seconds for one update (all its queries)"),
    Spec("registration", "retry_max", 300.0, number(1, 86400),
         "longest wait between retries of a failed update (exponential backoff with jitter)"),
    Spec("registration", "backend", "rfc2136", backend,
         "rfc2136, or module:factory of a plugin for a DNS API (docs/registration.md)"),
)  # fmt: skip

SECTIONS = tuple(dict.fromkeys(s.section for s in SCHEMA))
BY_NAME = {(s.section, s.key): s for s in SCHEMA}


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
    return BY_NAME[(section, key)]
