"""K3s's Tailscale integration: the node's Tailscale addresses (more arrives with the mesh issue).

k3snode reads ``tailscale status --json`` (``BackendState``, ``TailscaleIPs``) the way K3s itself
does (``pkg/vpn/vpn.go``) and writes those addresses as ``node-external-ip``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

from k3snode import addresses
from k3snode.discovery.result import Discovery

if TYPE_CHECKING:
    from k3snode.settings import Settings


def node_addresses(settings: Settings) -> Discovery:
    """The node's Tailscale IPv4/IPv6 (static ``external_ips`` win per family)."""
    ds = settings.discovery
    found = {"ipv4": ds.static_ipv4, "ipv6": ds.static_ipv6}
    sources = {fam: "static" for fam, a in found.items() if a}
    if all(found.values()):
        return Discovery(public_ipv4=found["ipv4"], public_ipv6=found["ipv6"], sources=sources)
    if not shutil.which("tailscale"):
        return Discovery(
            public_ipv4=found["ipv4"],
            public_ipv6=found["ipv6"],
            sources=sources,
            error="tailscale is not installed",
        )
    try:
        out = subprocess.run(
            ["tailscale", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        status = json.loads(out.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        return Discovery(error=f"tailscale status --json failed: {e}")
    if status.get("BackendState") != "Running":
        return Discovery(
            error=f"tailscale is not running (BackendState {status.get('BackendState')!r})"
        )
    for ip in status.get("TailscaleIPs") or []:
        try:
            fam = "ipv4" if addresses.family(ip) == 4 else "ipv6"
        except addresses.AddressError:
            continue
        if found[fam] is None:
            found[fam] = addresses.normalise(ip)
            sources[fam] = "tailscale"
    return Discovery(public_ipv4=found["ipv4"], public_ipv6=found["ipv6"], sources=sources)
