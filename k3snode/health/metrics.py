"""``/metrics``: counters for events, and gauges made from one snapshot at scrape time.

Events (a discovery's duration, its failures, config writes, restarts, registration updates) are
prometheus-client counters and a histogram, counted as they happen. Everything that describes the
current state (addresses, checks, peers, K3s's unit, registration) is a ``Snapshot`` the daemon
replaces whole after each report; ``Metrics`` is a custom collector (prometheus-client's
``Collector`` protocol: ``collect`` and ``describe``; its registry takes any object that has them,
so the class need not subclass ``prometheus_client.registry.Collector`` and import the library with
this module) that builds those gauge families from the snapshot it reads once per scrape. A
scrape therefore sees one report's state complete, never a gauge cleared and half refilled by the
report running beside it.

prometheus-client is imported only when a ``Metrics`` is made (the daemon does so after READY=1:
its import is the slowest part of a start), never by importing this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from k3snode.health.checks import Observation
from k3snode.health.model import Health
from k3snode.record import record, replace

_PEER_LABELS = ("interface", "peer", "name")
_PEER_GAUGES = (  # peer_metrics() key, metric name, help
    (
        "handshake_age_seconds",
        "k3snode_wireguard_peer_handshake_age_seconds",
        "Seconds since a WireGuard peer's latest handshake (-1: never)",
    ),
    ("stale", "k3snode_wireguard_peer_stale", "1 when a WireGuard peer is stale"),
    ("rx_bytes", "k3snode_wireguard_peer_receive_bytes", "Bytes received from a peer"),
    ("tx_bytes", "k3snode_wireguard_peer_transmit_bytes", "Bytes sent to a peer"),
)


@record
class Snapshot:
    """What the gauges show; ``Metrics.update`` replaces it whole. ``None``: not known yet (the
    gauge has no sample rather than a made-up 0)."""

    health: Health | None = None
    addresses: tuple[tuple[str, str, str], ...] = ()  # (address, family, source) in use
    peers: tuple[Observation, ...] = ()  # the observers' last answers (their peers)
    peers_at: float = 0.0  # unix time those answers were read (handshake ages)
    registration: dict[str, Any] | None = None  # the keeper's status(); None: publishes nothing
    k3s_active: bool | None = None
    last_change: float | None = None  # unix time the external addresses last changed


class Metrics:
    """The daemon's metrics registry: event counters plus this collector's snapshot gauges."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = r = CollectorRegistry()
        self.discovery_seconds = Histogram(
            "k3snode_discovery_duration_seconds",
            "How long one discovery took",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.discovery_failures = Counter(
            "k3snode_discovery_failures_total", "Discoveries that failed", ["reason"], registry=r
        )
        self.config_writes = Counter(
            "k3snode_config_writes_total", "Writes that changed K3s's config", registry=r
        )
        self.restarts = Counter(
            "k3snode_k3s_restarts_total",
            "K3s restarts asked for, by outcome",
            ["outcome"],
            registry=r,
        )
        self.registration_updates = Counter(
            "k3snode_registration_updates_total",
            "Registration updates, by outcome",
            ["outcome"],
            registry=r,
        )
        self._snapshot = Snapshot()
        self._lock = threading.Lock()  # updates from the loop and from workers do not interleave
        r.register(self)

    def update(self, **changes: Any) -> None:
        """Replace the snapshot by one with ``changes`` (``Snapshot`` fields); one assignment,
        so a scrape reads the old snapshot or the new one, never a mixture."""
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    # -- prometheus-client's Collector protocol ---------------------------------------------

    def describe(self) -> Iterator[Any]:
        """The gauge families without samples (the registry checks names against them)."""
        return _families(Snapshot(), samples=False)

    def collect(self) -> Iterator[Any]:
        return _families(self._snapshot)


def _families(snap: Snapshot, samples: bool = True) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    def family(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    address = family(
        "k3snode_external_address_info",
        "The node's current external addresses (node-external-ip)",
        ("address", "family", "source"),
    )
    last_change = family(
        "k3snode_last_change_timestamp_seconds", "Unix time the external addresses last changed"
    )
    k3s_active = family("k3snode_k3s_unit_active", "1 when K3s's unit is active")
    check_ok = family(
        "k3snode_health_check_ok", "1 when a health check passes (or is in grace)", ("check",)
    )
    healthy = family("k3snode_healthy", "1 when no health check is failing")
    peer = {key: family(name, doc, _PEER_LABELS) for key, name, doc in _PEER_GAUGES}
    online = family(
        "k3snode_tailscale_peer_online", "1 when a tailnet peer is online", ("peer", "name")
    )
    published = family(
        "k3snode_registration_published_info",
        "Addresses this server publishes in the registration DNS name",
        ("name", "address"),
    )
    reg_update = family(
        "k3snode_registration_last_update_timestamp_seconds",
        "Unix time of the last registration update (either outcome)",
    )
    reg_ok = family(
        "k3snode_registration_last_update_ok", "1 when the last registration update succeeded"
    )
    if samples:
        for addr, fam, source in snap.addresses:
            address.add_metric([addr, fam, source], 1)
        if snap.last_change is not None:
            last_change.add_metric([], snap.last_change)
        if snap.k3s_active is not None:
            k3s_active.add_metric([], 1 if snap.k3s_active else 0)
        if snap.health is not None:
            for c in snap.health.checks:
                check_ok.add_metric([c.check], 1 if c.ok else 0)
            healthy.add_metric([], 1 if snap.health.ok else 0)
        for labels, values in peer_metrics(snap.peers, snap.peers_at):
            for key, gauge in peer.items():
                gauge.add_metric([labels[k] for k in _PEER_LABELS], values[key])
        for obs in snap.peers:
            for p in obs.peers:
                if p.online is not None:
                    online.add_metric([p.public_key, p.name], 1 if p.online else 0)
        reg = snap.registration
        if reg:
            for addr in reg["published"]:
                published.add_metric([reg["name"], addr], 1)
            last = reg.get("last_update")
            if last:
                reg_update.add_metric([], last["time"])
                reg_ok.add_metric([], 1 if last["ok"] else 0)
    yield from (address, last_change, k3s_active, check_ok, healthy, *peer.values(), online)
    yield from (published, reg_update, reg_ok)


def peer_metrics(
    observations: tuple[Observation, ...] | list[Observation], now: float
) -> list[tuple[dict[str, str], dict[str, float]]]:
    """Per WireGuard peer of any observation (flannel's, the underlay's), its labels (interface,
    peer public key, name) and values: ``handshake_age_seconds`` (-1: never; never negative when
    the wall clock stepped back), ``stale`` (0/1), ``rx_bytes``, ``tx_bytes``. Tailscale peers
    (no handshake, ``online`` set) are skipped."""
    out = []
    for obs in observations:
        for p in obs.peers:
            if p.online is not None:
                continue
            labels = {"interface": p.interface, "peer": p.public_key, "name": p.name}
            age = -1.0 if p.last_handshake is None else max(0.0, now - p.last_handshake)
            values = {
                "handshake_age_seconds": age,
                "stale": 1.0 if p.stale else 0.0,
                "rx_bytes": float(p.rx_bytes),
                "tx_bytes": float(p.tx_bytes),
            }
            out.append((labels, values))
    return out


def failure_reason(error: str) -> str:
    """A short, bounded label for a discovery failure (metrics labels must not explode)."""
    e = error.lower()
    for key, label in (
        ("no external address", "no-address"),
        ("no default route", "no-route"),
        ("timed out", "timeout"),
        ("timeout", "timeout"),
        ("interfaces", "interfaces"),
        ("tailscale", "tailscale"),
        ("metadata", "metadata"),
    ):
        if key in e:
            return label
    return "other"
