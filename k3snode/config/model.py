"""The settings k3snode runs with: frozen records (``k3snode.record``), one per section of the settings file.

``k3snode/config/schema.py`` declares each setting (default, check, environment names) and
``k3snode/config/load.py`` builds a ``Settings`` from file, saved environment, environment and flags.
This module only holds the result and what can be derived from it without I/O.
"""

from __future__ import annotations

import os
from typing import Any

from k3snode import addresses, envfile
from k3snode.errors import UserError
from k3snode.record import field, fields, record
from k3snode.secret import Secret

DEFAULT_CONFIG = "/etc/k3snode/config.toml"
# Where a value came from (Settings.sources), lowest layer first.
FROM_FILE, FROM_SAVED, FROM_ENV, FROM_FLAG = "file", "saved", "environment", "flag"


class SettingsError(UserError):
    """A user mistake in settings; the message is one line naming where, which key and what value."""


@record
class UnderlayPeer:
    """One other node of the WireGuard underlay (``[[underlay.peers]]``)."""

    public_key: str
    endpoint: str  # host:port, host may be a DNS name
    address: str  # underlay address with prefix (/32 or /128 added when missing)
    keepalive: int | None = None
    name: str = ""


@record
class NodeSettings:
    """``[node]``: what this node is in the cluster and how nodes reach each other."""

    role: str
    mesh: str


@record
class K3sSettings:
    """``[k3s]``: joining the cluster, K3s's config file and unit, and options passed through."""

    server: str
    token_file: str
    token: Secret | None
    node_name: str
    cluster_init: bool
    config: str
    unit: str  # resolved: never empty
    options: dict[str, Any]


@record
class DiscoverySettings:
    """``[discovery]``: where the public addresses come from."""

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


@record
class TailscaleSettings:
    """``[tailscale]``: bringing the node into the tailnet when mesh is tailscale."""

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


@record
class DaemonSettings:
    """``[daemon]``: how often to look and how calmly to restart K3s (seconds)."""

    debounce: float
    poll_interval: float
    confirm_delay: float
    min_restart_interval: float
    boot_wait: float
    restart_timeout: float


@record
class HealthSettings:
    """``[health]``: the /healthz and /metrics endpoint, and the grace of a failing check."""

    listen: str
    port: int
    grace: float


@record
class PathsSettings:
    """``[paths]``: where k3snode keeps its state and its runtime files."""

    state_dir: str
    run_dir: str


@record
class UnderlaySettings:
    """``[underlay]``: the WireGuard underlay for embedded etcd across clouds."""

    enabled: bool
    interface: str
    address: str
    listen_port: int
    private_key_file: str
    userspace: str
    keepalive: int
    resolve_interval: float
    peers: tuple[UnderlayPeer, ...]


@record
class RegistrationSettings:
    """``[registration]``: the DNS name a server keeps pointing at its addresses."""

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


@record
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
    def underlay_ip(self) -> str | None:
        """This node's underlay address (without prefix) when the underlay is on: K3s's node-ip."""
        if not self.underlay.enabled:
            return None
        return self.underlay.address.split("/", 1)[0]

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


SECTION_TYPES = {
    "node": NodeSettings, "k3s": K3sSettings, "discovery": DiscoverySettings,
    "tailscale": TailscaleSettings, "daemon": DaemonSettings, "health": HealthSettings,
    "paths": PathsSettings, "underlay": UnderlaySettings,
    "registration": RegistrationSettings,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Loading


def as_dict(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with secrets masked (for `k3snode status` and debugging)."""
    out: dict[str, Any] = {"file": settings.file}
    for name in SECTION_TYPES:
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
