"""Which IP families K3s's flannel runs on this node, from the K3s config as K3s reads it.

flannel creates ``flannel-wg`` only when the cluster has IPv4 and ``flannel-wg-v6`` only when it
has IPv6 (flannel ``pkg/backend/wireguard/wireguard.go``); the WireGuard observer
(``mesh/wg/health.py``) asks this module which of them must exist.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k3snode.k3s.effective import as_list
from k3snode.record import record


@record
class Families:
    """Which of flannel's WireGuard interfaces must exist (``required``) and which are watched
    when present (``optional``); ``why`` names what decided it."""

    required: frozenset[int]
    optional: frozenset[int]
    why: str


def _families_of(values: Any, network: bool) -> list[int]:
    out = []
    for item in as_list(values):
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                fam = (
                    ipaddress.ip_network(part, strict=False)
                    if network
                    else ipaddress.ip_address(part)
                ).version
            except ValueError:
                continue
            if fam not in out:
                out.append(fam)
    return out


def ip_families(values: dict[str, Any], role: str) -> Families:
    """The families K3s's flannel runs, as far as this node's config tells.

    flannel takes them from the cluster CIDRs (K3s ``pkg/agent/flannel/setup.go`` ``findNetMode``:
    IPv4, IPv6 or both) and creates ``flannel-wg`` only with IPv4 and ``flannel-wg-v6`` only with
    IPv6 (flannel ``pkg/backend/wireguard/wireguard.go``). A server's ``cluster-cidr`` says it
    exactly; without one K3s uses 10.42.0.0/16, or fd00:42::/56 when the node's addresses are all
    IPv6 (``pkg/cli/server/server.go``). An agent gets the CIDRs from its server, so its own
    ``node-ip`` (else ``node-external-ip``) tells the primary family for certain and the other one
    is watched when present.
    """
    cidr = _families_of(values.get("cluster-cidr"), network=True) if role == "server" else []
    if cidr:
        return Families(frozenset(cidr), frozenset(), "cluster-cidr")
    for key in ("node-ip", "node-external-ip"):
        fams = _families_of(values.get(key), network=False)
        if not fams:
            continue
        if role == "server":
            if fams == [6]:
                return Families(frozenset({6}), frozenset(), f"{key} is IPv6 only")
            return Families(frozenset({4}), frozenset({6}), "K3s's default cluster-cidr")
        rest = frozenset({4, 6} - {fams[0]})
        return Families(frozenset({fams[0]}), rest, f"{key} (primary family)")
    return Families(frozenset({4}), frozenset({6}), "K3s's default cluster-cidr")
