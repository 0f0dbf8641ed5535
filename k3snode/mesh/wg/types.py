"""What both WireGuard backends share: the device as read (``Device``, ``Peer``), the change to
make (``Update``, ``PeerUpdate``), the ``Backend`` protocol, the errors and the endpoint helpers.
Imports nothing of the package, so every other module of it can import this one."""

from __future__ import annotations

import functools
import os
from typing import Protocol

from k3snode.record import record
from k3snode.secret import Secret

SOCKET_DIR = "/var/run/wireguard"


class WireGuardError(Exception):
    """Reading or configuring a WireGuard interface failed; the message says which and why."""


class NoSuchDevice(WireGuardError):
    """The interface does not exist (or is not WireGuard)."""


@record
class Peer:
    """A WireGuard peer as the device reports it."""

    public_key: str  # base64
    endpoint: str | None = None  # "ip:port" / "[ip6]:port"
    last_handshake: float | None = None  # unix time; None: never
    rx_bytes: int = 0
    tx_bytes: int = 0
    keepalive: int = 0
    allowed_ips: tuple[str, ...] = ()


@record
class Device:
    """A WireGuard interface as read from the kernel or wireguard-go."""

    ifname: str
    backend: str  # "kernel" | "userspace"
    public_key: str | None
    listen_port: int
    peers: tuple[Peer, ...]

    def peer(self, public_key: str) -> Peer | None:
        return self._by_key.get(public_key)

    @functools.cached_property
    def _by_key(self) -> dict[str, Peer]:
        """Peers by public key, built on the first ``peer()`` call: one lookup per wanted peer
        stays O(1), so a pass over n peers is O(n), not O(n²)."""
        return {p.public_key: p for p in self.peers}


@record
class PeerUpdate:
    """Add or change one peer (fields left None stay as they are), or remove it."""

    public_key: str
    remove: bool = False
    endpoint: str | None = None  # "ip:port" / "[ip6]:port"; names must be resolved first
    keepalive: int | None = None
    allowed_ips: tuple[str, ...] | None = None  # replaces the peer's list when not None


@record
class Update:
    """A change to a device: key, port and peers (what is None stays)."""

    private_key: Secret | None = None
    listen_port: int | None = None
    replace_peers: bool = False
    peers: tuple[PeerUpdate, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.private_key is not None
            or self.listen_port is not None
            or self.replace_peers
            or self.peers
        )


class Backend(Protocol):
    kind: str
    ifname: str

    def read(self) -> Device: ...

    def configure(self, update: Update) -> None: ...

    def close(self) -> None:
        """Release what the backend holds open (the kernel backend's netlink socket)."""


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """("ip", port) from "ip:port" or "[ip6]:port"."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def join_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def userspace_socket(ifname: str, socket_dir: str = SOCKET_DIR) -> str:
    return os.path.join(socket_dir, f"{ifname}.sock")
