"""What discovery found: the node's addresses, where each came from, and why others were refused."""

from __future__ import annotations

from typing import Any

from k3snode.bounded import one_line
from k3snode.record import field, record

SOURCES = ("static", "metadata", "cloud-init", "interface", "echo")


@record
class Discovery:
    """One discovery's answer.

    ``source`` is where the first-listed address came from (IPv4 before IPv6); ``sources`` says it
    per family when they differ. ``notes`` carry every reason worth telling a user: a rejected
    address and why, "metadata says the node has no public IPv4", a provider that did not answer.
    ``error`` is set when discovery itself failed (as opposed to answering "none").
    """

    provider: str | None = None
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    private_ipv4: str | None = None
    sources: dict[str, str] = field(
        default_factory=dict
    )  # {"ipv4": "metadata", "ipv6": "interface"}
    notes: tuple[str, ...] = ()
    error: str | None = None
    duration: float = 0.0

    def __post_init__(self) -> None:
        # Error text may quote a metadata server's answer: one bounded, printable line each.
        object.__setattr__(self, "notes", tuple(one_line(n, 1000) for n in self.notes))
        if self.error is not None:
            object.__setattr__(self, "error", one_line(self.error, 1000))

    @property
    def source(self) -> str | None:
        if self.public_ipv4:
            return self.sources.get("ipv4")
        if self.public_ipv6:
            return self.sources.get("ipv6")
        return None

    @property
    def external_ips(self) -> list[str]:
        return [a for a in (self.public_ipv4, self.public_ipv6) if a]

    @property
    def found(self) -> bool:
        return bool(self.public_ipv4 or self.public_ipv6)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "provider": self.provider,
            "source": self.source,
            "public_ipv4": self.public_ipv4,
            "public_ipv6": self.public_ipv6,
            "private_ipv4": self.private_ipv4,
        }
        if self.sources and len(set(self.sources.values())) > 1:
            out["sources"] = dict(self.sources)
        if self.notes:
            out["notes"] = list(self.notes)
        if self.error:
            out["error"] = self.error
        return out

    def summary(self) -> str:
        """One readable line, e.g. ``203.0.113.5 (metadata, aws), 2600:1f18::5 (interface)``."""
        parts = []
        for fam, addr in (("ipv4", self.public_ipv4), ("ipv6", self.public_ipv6)):
            if addr:
                src = self.sources.get(fam, "?")
                if src == "metadata" and self.provider:
                    src = f"metadata {self.provider}"
                parts.append(f"{addr} ({src})")
        return ", ".join(parts) if parts else "no public address"
