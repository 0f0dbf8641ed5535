"""Global addresses on the default-route interface, read with pyroute2 (rtnetlink).

This is the bare-metal answer and the fallback on clouds that put the public address on the NIC.
Virtual interfaces (CNI bridges, flannel, kube-ipvs0 holding Service IPs, Docker, WireGuard,
Tailscale) are never the node's own, and IPv6 privacy (temporary), deprecated, tentative or
duplicate addresses are skipped.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from k3snode import addresses

VIRTUAL_NAMES = frozenset({"lo", "cni0", "kube-ipvs0", "docker0", "tailscale0", "nodelocaldns"})
VIRTUAL_PREFIXES = ("flannel", "veth", "wg", "cali", "cilium", "vxlan", "k3snode", "kube-", "tun")

# linux/if_addr.h
IFA_F_TEMPORARY = 0x01
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
_SKIP_FLAGS = IFA_F_TEMPORARY | IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE
RT_SCOPE_UNIVERSE = 0


@dataclass(frozen=True)
class InterfaceAddresses:
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    private_ipv4: str | None = None
    interfaces: tuple[str, ...] = ()  # the default-route interface(s) looked at
    notes: tuple[str, ...] = ()


def is_virtual(name: str) -> bool:
    return name in VIRTUAL_NAMES or name.startswith(VIRTUAL_PREFIXES)


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def _default_oifs(ipr: Any, family: int) -> list[int]:
    """Interface indexes of the default routes of ``family``, lowest metric first."""
    routes = []
    for r in ipr.get_routes(family=family, table=254):
        if r["dst_len"] != 0 or r["type"] != 1:  # default, unicast
            continue
        metric = _attr(r, "RTA_PRIORITY") or 0
        oif = _attr(r, "RTA_OIF")
        if oif:
            routes.append((metric, oif))
        for hop in _attr(r, "RTA_MULTIPATH") or []:
            if hop.get("oif"):
                routes.append((metric, hop["oif"]))
    return [oif for _, oif in sorted(routes)]


def read() -> InterfaceAddresses:
    """Public IPv4/IPv6 and the private IPv4 of the default-route interface(s)."""
    from pyroute2 import IPRoute

    notes: list[str] = []
    found: dict[str, str | None] = {"ipv4": None, "ipv6": None, "private_ipv4": None}
    seen: list[str] = []
    with IPRoute() as ipr:
        names = {link["index"]: _attr(link, "IFLA_IFNAME") for link in ipr.get_links()}
        for family, fam in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
            for oif in _default_oifs(ipr, family):
                name = names.get(oif, str(oif))
                if is_virtual(name):
                    notes.append(f"default {fam} route via {name} skipped (virtual interface)")
                    continue
                if name not in seen:
                    seen.append(name)
                for msg in ipr.get_addr(family=family, index=oif):
                    addr = _attr(msg, "IFA_LOCAL") or _attr(msg, "IFA_ADDRESS")
                    flags = _attr(msg, "IFA_FLAGS")
                    flags = msg["flags"] if flags is None else flags
                    if addr is None or msg["scope"] != RT_SCOPE_UNIVERSE or flags & _SKIP_FLAGS:
                        continue
                    judged = addresses.judge(addr, want_family=4 if fam == "ipv4" else 6)
                    if judged.ok:
                        if found[fam] is None:
                            found[fam] = judged.address
                    elif fam == "ipv4" and found["private_ipv4"] is None and judged.address:
                        found["private_ipv4"] = judged.address
                        notes.append(f"{name}: {judged.address} is {judged.problem}")
                    elif judged.address:
                        notes.append(f"{name}: {judged.address} is {judged.problem}")
                if found[fam]:
                    break
    if not seen and not notes:
        notes.append("no default route")
    return InterfaceAddresses(
        found["ipv4"], found["ipv6"], found["private_ipv4"], tuple(seen), tuple(notes)
    )
