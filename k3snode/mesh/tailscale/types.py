"""What k3snode knows about Tailscale, as values: ``tailscale status --json`` reduced to what it
uses, the outcome of a bring-up, and the one error every Tailscale step raises."""

from __future__ import annotations

from k3snode.record import record


class TailscaleError(Exception):
    """Tailscale could not be brought up; the message is one line a user can act on.

    ``kind``: not-installed, too-old, install-failed, daemon, bad-key, needs-login, machine-auth, timeout,
    no-address, failed.
    """

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind


@record
class Peer:
    """One peer from ``tailscale status --json`` (``ipnstate.PeerStatus``): what the health
    report shows of it."""

    public_key: str
    hostname: str
    dns_name: str
    online: bool
    last_seen: float | None  # unix time; control only reports it while the peer is offline
    last_handshake: float | None
    endpoint: str | None  # CurAddr (direct) or "derp:<region>" (relayed)
    rx_bytes: int
    tx_bytes: int


@record
class Status:
    """What ``tailscale status --json`` says (``ipnstate.Status``), reduced to what k3snode uses."""

    backend_state: str
    addresses: tuple[str, ...]  # this node's, valid and in canonical form (``status._own_ips``)
    hostname: str
    online: bool
    self_expired: bool
    key_expiry: float | None
    health: tuple[str, ...]
    peers: tuple[Peer, ...]
    auth_url: str = ""

    @property
    def ipv4(self) -> str | None:
        return next((a for a in self.addresses if ":" not in a), None)

    @property
    def ipv6(self) -> str | None:
        return next((a for a in self.addresses if ":" in a), None)

    @property
    def login_error(self) -> str | None:
        """Tailscale's "You are logged out. The last login error was: …" health message."""
        return next((h for h in self.health if "login error" in h or "invalid key" in h), None)


@record
class TailscaleState:
    """The outcome of ``bringup.ensure_up``: what k3snode found or did, and the node's addresses."""

    backend_state: str
    ipv4: str | None
    ipv6: str | None
    hostname: str
    installed: bool  # k3snode ran the install script in this call
    daemon_started: bool  # k3snode started tailscaled in this call
    brought_up: bool  # k3snode ran `tailscale up` in this call

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, self.ipv6) if a]
