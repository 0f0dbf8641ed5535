"""Role × mesh → the K3s options k3snode writes. Pure: no I/O, no clock.

What K3s needs (K3s's documentation of its configuration file and flags, docs/k3s.md):

============  ===================================================================================
every node    ``node-external-ip`` (one address per family, IPv4 first), ``node-name`` if set
server        ``cluster-init`` for the first server; ``server`` + ``token-file`` when joining;
              with ``wireguard-native``: ``flannel-backend: wireguard-native``,
              ``flannel-external-ip: true``
agent         ``server``, ``token-file`` — and never a server-only key (K3s's agent dies on it)
tailscale     ``vpn-auth-file`` on every node, ``node-external-ip`` = the node's Tailscale address
underlay      ``node-ip`` = the underlay address (etcd advertises it), external IP unchanged
registration  servers: the registration name in ``tls-san`` (after the user's own SANs)
============  ===================================================================================

Every key — ours and the user's ``[k3s.options]`` — is checked against K3s's flag list for the
role before anything is written.
"""

from __future__ import annotations

from typing import Any

from k3snode import addresses
from k3snode.config.load import show
from k3snode.config.model import Settings, SettingsError
from k3snode.k3s import flags
from k3snode.record import replace

# Keys that carry secrets inline: never written; their *-file variants are.
_INLINE_SECRETS = {
    "token": "token_file in [k3s] (or K3S_TOKEN / K3S_TOKEN_FILE)",
    "agent-token": "the agent-token-file option",
    "vpn-auth": 'mesh = "tailscale" with [tailscale] auth_key_file',
}
# Keys k3snode always owns, and the setting to use instead.
_ALWAYS_MANAGED = {
    "node-external-ip": "[discovery] external_ips (or let k3snode discover it)",
    "server": "[k3s] server",
    "token-file": "[k3s] token_file",
    "vpn-auth-file": 'mesh = "tailscale" with [tailscale] auth_key_file',
    "cluster-init": "[k3s] cluster_init",
    "node-name": "[k3s] node_name",
}


def check_user_option(role: str, mesh: str, key: str, value: Any, underlay: bool = False) -> Any:
    """Check one ``[k3s.options]`` entry; return it in K3s's shape or raise ValueError."""
    if key in _INLINE_SECRETS:
        raise ValueError(f"secrets are never written inline; use {_INLINE_SECRETS[key]}")
    if key in _ALWAYS_MANAGED:
        raise ValueError(f"is managed by k3snode; use {_ALWAYS_MANAGED[key]}")
    if mesh == "wireguard-native" and key in ("flannel-backend", "flannel-external-ip"):
        raise ValueError("is managed by k3snode for mesh 'wireguard-native'")
    if mesh == "tailscale" and key == "flannel-external-ip":
        raise ValueError(
            "must not be set with mesh 'tailscale' (K3s's Tailscale backend "
            "reaches nodes over the tailnet)"
        )
    if underlay and key == "node-ip":
        raise ValueError(
            "is managed by k3snode while the underlay is enabled (node-ip = the underlay address)"
        )
    try:
        return flags.check(role, key, value)
    except flags.OptionError as e:
        raise ValueError(str(e)) from None


def check_settings(settings: Settings) -> Settings:
    """``settings`` with every ``[k3s.options]`` entry checked and in K3s's shape; a bad one raises
    SettingsError naming the file, the key and the value. Runs on top of ``config.load.load``,
    which knows nothing of K3s's flags."""
    checked = {}
    for key, value in settings.k3s.options.items():
        label = f"{settings.file}: [k3s.options] {key}" if settings.file else f"[k3s.options] {key}"
        try:
            checked[key] = check_user_option(
                settings.role, settings.mesh, key, value, underlay=settings.underlay.enabled
            )
        except ValueError as e:
            raise SettingsError(f"{label}: {e} (got {show(value)})") from None
    return replace(settings, k3s=replace(settings.k3s, options=checked))


def render(
    settings: Settings,
    external_ips: list[str],
    underlay_ip: str | None = None,
) -> dict[str, Any]:
    """The options k3snode manages, in a stable order.

    ``external_ips``: the node's external addresses (for ``tailscale``: its Tailscale addresses);
    ``underlay_ip``: this node's underlay address when the underlay is on.
    """
    role, mesh, k3s = settings.role, settings.mesh, settings.k3s
    out: dict[str, Any] = {}
    ext = addresses.order_v4_first(list(external_ips))
    if ext:
        out["node-external-ip"] = ext
    if underlay_ip:
        out["node-ip"] = [underlay_ip]
    if k3s.node_name:
        out["node-name"] = k3s.node_name
    if k3s.server:
        out["server"] = k3s.server
    if settings.token_path:
        out["token-file"] = settings.token_path
    if role == "server":
        if k3s.cluster_init:
            out["cluster-init"] = True
        if mesh == "wireguard-native":
            out["flannel-backend"] = "wireguard-native"
            out["flannel-external-ip"] = True
    if mesh == "tailscale":
        out["vpn-auth-file"] = settings.vpn_auth_path
    for key, value in k3s.options.items():
        out[key] = value
    if role == "server" and settings.registration.name:
        out["tls-san"] = _with_san(out.get("tls-san"), settings.registration.name)
    return {key: flags.check(role, key, value) for key, value in out.items()}


def _with_san(sans: Any, name: str) -> list[str]:
    """The user's ``tls-san`` (one string or a list) with the registration name appended once:
    agents that join by the name refuse a serving certificate without it."""
    items = [] if sans is None else [sans] if isinstance(sans, str) else list(sans)
    return [*items, name] if name not in items else items


def managed_keys(settings: Settings) -> list[str]:
    """The keys ``render`` writes for these settings, whatever the addresses turn out to be."""
    return ["node-external-ip", *render(settings, [], settings.underlay_ip)]
