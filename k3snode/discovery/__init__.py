"""Find the node's external addresses: static settings, then cloud metadata, then interfaces, then
(opt-in) echo services. ``discover`` is the one entry point; each source lives in its own module.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from k3snode.discovery.result import Discovery

if TYPE_CHECKING:
    from k3snode.settings import Settings

__all__ = ["Discovery", "discover"]


def discover(settings: Settings, monotonic=time.monotonic) -> Discovery:
    """Static addresses first; the families they leave open from the default-route interface."""
    started = monotonic()
    ds = settings.discovery
    found: dict[str, str | None] = {"ipv4": ds.static_ipv4, "ipv6": ds.static_ipv6}
    sources = {fam: "static" for fam, addr in found.items() if addr}
    notes: list[str] = []
    private_ipv4: str | None = None
    error: str | None = None
    if not all(found.values()):
        from k3snode.discovery import interfaces

        try:
            got = interfaces.read()
        except OSError as e:
            error = f"cannot read interfaces: {e}"
        else:
            notes.extend(got.notes)
            private_ipv4 = got.private_ipv4
            for fam, addr in (("ipv4", got.public_ipv4), ("ipv6", got.public_ipv6)):
                if found[fam] is None and addr:
                    found[fam] = addr
                    sources[fam] = "interface"
    return Discovery(
        provider=None,
        public_ipv4=found["ipv4"],
        public_ipv6=found["ipv6"],
        private_ipv4=private_ipv4,
        sources=sources,
        notes=tuple(notes),
        error=error,
        duration=monotonic() - started,
    )
