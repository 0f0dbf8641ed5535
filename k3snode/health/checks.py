"""The shared vocabulary of health: what a component observed, and what a preflight found.

Components (discovery, the K3s unit, Tailscale, flannel's WireGuard, the underlay) report
``Observation``s; the daemon's health model (``model.py``) applies grace periods and turns them
into ``/healthz``, ``/metrics``, the status file and systemd's STATUS line. ``k3snode check`` runs
``Finding``-returning preflights. Neither knows about the other's transport. This module imports
nothing of k3snode, so every component can report without an import circle.
"""

from __future__ import annotations

from k3snode.record import field, record

LEVELS = ("ok", "warning", "error")


@record
class PeerHealth:
    """One peer of a WireGuard interface or a tailnet, as last observed."""

    interface: str  # flannel-wg, flannel-wg-v6, the underlay interface, tailscale0
    public_key: str  # WireGuard key (base64) or Tailscale node key / host name
    endpoint: str | None = None
    last_handshake: float | None = None  # unix time; None: never
    rx_bytes: int = 0
    tx_bytes: int = 0
    online: bool | None = None  # Tailscale's view, when it has one
    stale: bool = False
    name: str = ""
    last_seen: float | None = None  # unix time the control plane last saw it (Tailscale, offline)


@record
class Observation:
    """One check's current state. ``ok`` False starts the check's grace period, not an outage."""

    check: str  # "discovery", "config", "k3s", "tailscale", "wireguard:flannel-wg", "underlay"
    ok: bool
    detail: str  # one readable line: the state, or why it fails
    peers: tuple[PeerHealth, ...] = ()
    facts: dict[str, str] = field(default_factory=dict)  # small key/values for status output


@record
class Finding:
    """One result of a preflight check (``k3snode check``)."""

    level: str  # ok | warning | error
    topic: str  # settings, k3s, wireguard, tailscale, underlay, discovery
    message: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}")
