"""What the daemon knows about the node's external addresses between passes: the addresses
written, the last discovery, a new address waiting to be confirmed, the last change and the
last refusal (so the same reason is logged once)."""

from __future__ import annotations

import logging
from typing import Any

from k3snode.discovery.result import Discovery
from k3snode.record import record

log = logging.getLogger(__name__)


@record(frozen=False)
class Addresses:
    """The daemon's view of the node's addresses: written, found, waiting for confirmation."""

    current: tuple[str, ...] | None = None  # written as node-external-ip (None: not yet)
    found: Discovery | None = None  # the discovery that gave them
    candidate: tuple[str, ...] | None = None  # new, waiting for its confirming look
    candidate_since: float = 0.0
    last_change: dict[str, Any] | None = None  # {"time", "from", "to"} for status and metrics
    last_discovery_ok: float | None = None  # monotonic
    last_refusal: str | None = None  # the last reason a discovery was not written

    def confirm_wait(self, addrs: tuple[str, ...], now: float, delay: float) -> float | None:
        """None when ``addrs`` is confirmed (seen again ``delay`` s after it first appeared),
        else the seconds until the confirming look."""
        if delay <= 0:
            return None
        if self.candidate != addrs:
            self.candidate = addrs
            self.candidate_since = now
            log.info(
                "new external address %s (now %s); confirming in %gs",
                ", ".join(addrs) or "none",
                ", ".join(self.current or ()) or "none",
                delay,
            )
            return delay
        if now - self.candidate_since < delay:
            return self.candidate_since + delay - now
        log.info("new external address %s confirmed", ", ".join(addrs) or "none")
        return None

    def written(self, addrs: tuple[str, ...], found: Discovery, wall: float) -> bool:
        """Record what a pass wrote; True when the addresses changed (``last_change`` set)."""
        self.candidate = None
        changed = addrs != self.current
        if changed:
            if self.current is not None:
                before = ", ".join(self.current) if self.current else "none"
                log.info(
                    "external address changed from %s to %s", before, ", ".join(addrs) or "none"
                )
            self.last_change = {"time": wall, "from": list(self.current or ()), "to": list(addrs)}
        self.current = addrs
        self.found = found
        return changed

    def rows(self) -> list[tuple[str, str, str]]:
        """(address, family, source) of the addresses written, for status and metrics."""
        if self.found is None:
            return []
        found = self.found
        return [
            (addr, fam, found.sources.get(fam, ""))
            for fam, addr in (("ipv4", found.public_ipv4), ("ipv6", found.public_ipv6))
            if addr and addr in (self.current or ())
        ]
