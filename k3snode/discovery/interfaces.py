"""Global addresses on the default-route interface, read over rtnetlink (``k3snode/netlink.py``,
stdlib only: importing pyroute2 would cost this path a few hundred milliseconds).

This is the bare-metal answer and the fallback on clouds that put the public address on the NIC.
Virtual interfaces (CNI bridges, flannel, kube-ipvs0 holding Service IPs, Docker, WireGuard,
Tailscale) are never the node's own, and IPv6 privacy (temporary), deprecated, tentative or
duplicate addresses are skipped.
"""

from __future__ import annotations

import socket

from k3snode import addresses, netlink
from k3snode.record import record

VIRTUAL_NAMES = frozenset({"lo", "cni0", "kube-ipvs0", "docker0", "tailscale0", "nodelocaldns"})
VIRTUAL_PREFIXES = ("flannel", "veth", "wg", "cali", "cilium", "vxlan", "k3snode", "kube-", "tun")

# linux/if_addr.h
IFA_F_TEMPORARY = 0x01
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
_SKIP_FLAGS = IFA_F_TEMPORARY | IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE
RT_SCOPE_UNIVERSE = 0
RT_TABLE_MAIN = 254
RTN_UNICAST = 1


@record
class InterfaceAddresses:
    """The addresses on the default-route interface(s), judged public or private."""

    public_ipv4: str | None = None
    public_ipv6: str | None = None
    private_ipv4: str | None = None
    interfaces: tuple[str, ...] = ()  # the default-route interface(s) looked at
    notes: tuple[str, ...] = ()


def is_virtual(name: str) -> bool:
    return name in VIRTUAL_NAMES or name.startswith(VIRTUAL_PREFIXES)


def _default_oifs(family: int) -> list[int]:
    """Interface indexes of the main table's default routes of ``family``, lowest metric first."""
    found = []
    try:
        routes = netlink.routes(family)
    except OSError:  # e.g. a kernel without IPv6
        return []
    for r in routes:
        if r.dst_len != 0 or r.type != RTN_UNICAST or r.table != RT_TABLE_MAIN:
            continue
        found.extend((r.priority, oif) for oif in r.oifs if oif)
    return [oif for _, oif in sorted(found)]


def read() -> InterfaceAddresses:
    """Public IPv4/IPv6 and the private IPv4 of the default-route interface(s)."""
    notes: list[str] = []
    found: dict[str, str | None] = {"ipv4": None, "ipv6": None, "private_ipv4": None}
    seen: list[str] = []
    names = {link.index: link.name for link in netlink.links()}
    for family, fam in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        oifs = _default_oifs(family)
        addrs = netlink.addresses(family) if oifs else []
        for oif in oifs:
            name = names.get(oif, str(oif))
            if is_virtual(name):
                notes.append(f"default {fam} route via {name} skipped (virtual interface)")
                continue
            if name not in seen:
                seen.append(name)
            for a in addrs:
                if a.index != oif or a.address is None:
                    continue
                if a.scope != RT_SCOPE_UNIVERSE or a.flags & _SKIP_FLAGS:
                    continue
                judged = addresses.judge(a.address, want_family=4 if fam == "ipv4" else 6)
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
