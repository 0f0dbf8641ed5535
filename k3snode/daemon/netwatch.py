"""Notice address and default-route changes: the rtnetlink subscription (``netlink.py``), read
without blocking from the daemon's ``select`` loop.

Only events that can change the node's addresses ask for a pass: a global address added or
removed on a non-virtual interface, or a default route of the main table added or removed.
"""

from __future__ import annotations

import socket

from k3snode import netlink
from k3snode.discovery.interfaces import is_virtual

RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0


def relevant(change: netlink.Change) -> str | None:
    """Why this change may change the node's external addresses, or None."""
    verb = "added" if change.added else "removed"
    item = change.item
    if isinstance(item, netlink.Addr):
        if item.scope != RT_SCOPE_UNIVERSE:
            return None
        name = _ifname(item.index)
        if name is not None and is_virtual(name):
            return None
        return f"address {item.address or '?'} {verb} on {name or item.index}"
    if item.table == RT_TABLE_MAIN and item.dst_len == 0:
        return f"default route {verb}"
    return None


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except (OSError, ValueError):
        return None  # the interface is already gone


class Watch:
    """The subscription; ``fileno()`` for select, ``read()`` drains what is pending."""

    def __init__(self) -> None:
        self._sub = netlink.Subscription()

    def fileno(self) -> int:
        return self._sub.fileno()

    def read(self) -> list[str]:
        """Reasons of the relevant events pending now (an overrun counts as one)."""
        changes, overrun = self._sub.read()
        reasons = ["netlink overrun"] if overrun else []  # the kernel dropped events: look anyway
        reasons.extend(r for r in map(relevant, changes) if r)
        return reasons

    def close(self) -> None:
        self._sub.close()
