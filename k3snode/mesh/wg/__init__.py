"""WireGuard through one small interface with two backends.

- ``kernel``: the kernel module, read and configured with pyroute2's generic-netlink WireGuard API.
- ``userspace``: wireguard-go (or any implementation of WireGuard's cross-platform interface), via
  its text protocol on ``/var/run/wireguard/<ifname>.sock``.

``open_backend(ifname)`` picks the one that serves an interface; both return the same ``Device``
and take the same ``Update``, so the flannel observer and the underlay never know which is which.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from k3snode.secret import Secret

SOCKET_DIR = "/var/run/wireguard"


class WireGuardError(Exception):
    """Reading or configuring a WireGuard interface failed; the message says which and why."""


class NoSuchDevice(WireGuardError):
    """The interface does not exist (or is not WireGuard)."""


@dataclass(frozen=True)
class Peer:
    public_key: str  # base64
    endpoint: str | None = None  # "ip:port" / "[ip6]:port"
    last_handshake: float | None = None  # unix time; None: never
    rx_bytes: int = 0
    tx_bytes: int = 0
    keepalive: int = 0
    allowed_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    ifname: str
    backend: str  # "kernel" | "userspace"
    public_key: str | None
    listen_port: int
    peers: tuple[Peer, ...]

    def peer(self, public_key: str) -> Peer | None:
        return next((p for p in self.peers if p.public_key == public_key), None)


@dataclass(frozen=True)
class PeerUpdate:
    """Add or change one peer (fields left None stay as they are), or remove it."""

    public_key: str
    remove: bool = False
    endpoint: str | None = None  # "ip:port" / "[ip6]:port"; names must be resolved first
    keepalive: int | None = None
    allowed_ips: tuple[str, ...] | None = None  # replaces the peer's list when not None


@dataclass(frozen=True)
class Update:
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


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """("ip", port) from "ip:port" or "[ip6]:port"."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def join_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def userspace_socket(ifname: str, socket_dir: str = SOCKET_DIR) -> str:
    return os.path.join(socket_dir, f"{ifname}.sock")


def open_backend(ifname: str, socket_dir: str = SOCKET_DIR) -> Backend:
    """The userspace backend when ``ifname`` has a UAPI socket, else the kernel backend."""
    if os.path.exists(userspace_socket(ifname, socket_dir)):
        from k3snode.mesh.wg.userspace import Userspace

        return Userspace(ifname, socket_dir)
    from k3snode.mesh.wg.kernel import Kernel

    return Kernel(ifname)
