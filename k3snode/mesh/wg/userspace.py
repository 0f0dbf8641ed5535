"""The userspace backend: WireGuard's cross-platform text protocol (wireguard-go's UAPI).

A stream socket ``/var/run/wireguard/<ifname>.sock``; ``get=1`` or ``set=1`` then ``key=value``
lines and a blank line; the answer ends with ``errno=N`` and a blank line. Keys travel as hex.
The socket path is global, not per network namespace.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable

from k3snode.mesh.wg import keys
from k3snode.mesh.wg.types import (
    SOCKET_DIR,
    Device,
    NoSuchDevice,
    Peer,
    Update,
    WireGuardError,
    userspace_socket,
)

log = logging.getLogger(__name__)

TIMEOUT = 5.0


def _hex(b64: str) -> str:
    return keys.decode(b64).hex()


def _b64(hexkey: str) -> str:
    return keys.encode(bytes.fromhex(hexkey))


class Userspace:
    kind = "userspace"

    def __init__(self, ifname: str, socket_dir: str = SOCKET_DIR) -> None:
        self.ifname = ifname
        self.path = userspace_socket(ifname, socket_dir)
        self._keys = keys.PublicKeyCache()  # the device's public key, derived once per key

    def close(self) -> None:
        """Nothing to release: each exchange opens and closes its own connection."""

    def _exchange(self, request: str) -> list[str]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            try:
                s.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                raise NoSuchDevice(
                    f"{self.ifname}: no userspace WireGuard at {self.path}"
                ) from None
            s.sendall(request.encode())
            buf = bytearray()  # appended in place: bytes += would copy it all per chunk (O(n²))
            while not (buf.endswith(b"\n\n") or buf == b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            raise WireGuardError(f"{self.ifname}: {self.path}: {e.strerror or e}") from None
        finally:
            s.close()
        lines = buf.decode(errors="replace").strip("\n").split("\n")
        errno = next((ln[6:] for ln in reversed(lines) if ln.startswith("errno=")), None)
        if errno is None:
            raise WireGuardError(f"{self.ifname}: incomplete answer from {self.path}")
        if errno != "0":
            raise WireGuardError(f"{self.ifname}: the userspace WireGuard refused (errno={errno})")
        return [ln for ln in lines if ln and not ln.startswith("errno=")]

    def server_pid(self) -> int | None:
        """The PID of the wireguard-go serving this interface, or None. (The socket's
        SO_PEERCRED names the parent that created it, which exits when wireguard-go daemonizes,
        so the process is found by its command line: the socket path, hence the name, is unique.)"""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")[:-1]
            except OSError:
                continue
            if (
                len(argv) >= 2
                and os.path.basename(argv[0]) == b"wireguard-go"
                and argv[-1].decode(errors="replace") == self.ifname
            ):
                return int(pid)
        return None

    def read(self) -> Device:
        lines = self._exchange("get=1\n\n")
        try:
            public_key, port, peers = parse_get(lines, self._public_of)
        except (ValueError, KeyError) as e:
            raise WireGuardError(f"{self.ifname}: garbled answer from {self.path} ({e})") from None
        return Device(self.ifname, self.kind, public_key, port, peers)

    def _public_of(self, private_hex: str) -> str:
        """The public key of the device's private key (hex, as UAPI gives it)."""
        return self._keys.public_of(bytes.fromhex(private_hex))

    def configure(self, update: Update) -> None:
        if not update:
            return
        lines = ["set=1"]
        if update.private_key is not None:
            lines.append(f"private_key={_hex(update.private_key.reveal())}")
        if update.listen_port is not None:
            lines.append(f"listen_port={update.listen_port}")
        if update.replace_peers:
            lines.append("replace_peers=true")
        for p in update.peers:
            lines.append(f"public_key={_hex(p.public_key)}")
            if p.remove:
                lines.append("remove=true")
                continue
            if p.endpoint is not None:
                lines.append(f"endpoint={p.endpoint}")
            if p.keepalive is not None:
                lines.append(f"persistent_keepalive_interval={p.keepalive}")
            if p.allowed_ips is not None:
                lines.append("replace_allowed_ips=true")
                lines.extend(f"allowed_ip={a}" for a in p.allowed_ips)
        self._exchange("\n".join(lines) + "\n\n")


def _peer(d: dict) -> Peer:
    sec, nsec = d.get("last_handshake_time_sec", 0), d.get("last_handshake_time_nsec", 0)
    return Peer(
        public_key=d["public_key"],
        endpoint=d.get("endpoint"),
        last_handshake=sec + nsec / 1e9 if sec or nsec else None,
        rx_bytes=d.get("rx_bytes", 0),
        tx_bytes=d.get("tx_bytes", 0),
        keepalive=d.get("persistent_keepalive_interval", 0),
        allowed_ips=tuple(d["allowed_ip"]),
    )


_INTS = {"last_handshake_time_sec", "last_handshake_time_nsec", "rx_bytes", "tx_bytes",
         "persistent_keepalive_interval"}  # fmt: skip


def _public_of_hex(private_hex: str) -> str:
    return keys.public_from_raw(bytes.fromhex(private_hex))


def parse_get(
    lines: list[str], public_of: Callable[[str], str] = _public_of_hex
) -> tuple[str | None, int, tuple[Peer, ...]]:
    """(public key, listen port, peers) from the ``key=value`` lines of a ``get=1`` answer;
    ``public_of`` turns the private key (hex) into the public key.
    Raises ValueError naming the key (never the value: a line may hold the private key)."""
    public_key, port = None, 0
    peers: list[dict] = []
    for line in lines:
        k, _, v = line.partition("=")
        try:
            if k == "public_key":
                peers.append({"public_key": _b64(v), "allowed_ip": []})
            elif not peers:
                if k == "private_key":
                    public_key = public_of(v)
                elif k == "listen_port":
                    port = int(v)
            elif k == "allowed_ip":
                peers[-1]["allowed_ip"].append(v)
            elif k == "endpoint":
                peers[-1]["endpoint"] = v
            elif k in _INTS:
                peers[-1][k] = int(v)
        except ValueError:
            raise ValueError(f"bad value for {k}") from None
    return public_key, port, tuple(_peer(d) for d in peers)
