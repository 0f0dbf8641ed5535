"""The kernel backend: the WireGuard module's generic-netlink API, through pyroute2.

pyroute2 (0.7.2 in Debian 12 and 0.9.x from PyPI) takes one peer per ``set`` call and keys as
base64; this module turns an ``Update`` into those calls and the dump back into a ``Device``.
A ``Kernel`` opens one generic-netlink socket on first use and keeps it until ``close()``: the
daemon reads its devices every health interval, and each new pyroute2 socket costs a dozen
syscalls, an asyncio loop (0.9) and failing ``bind()`` retries. The socket talks to the network
namespace it was opened in.
"""

from __future__ import annotations

import errno as errnos
import logging

from k3snode import netlink
from k3snode.mesh.wg import keys
from k3snode.mesh.wg.types import (
    Device,
    NoSuchDevice,
    Peer,
    Update,
    WireGuardError,
    join_endpoint,
    split_endpoint,
)

log = logging.getLogger(__name__)


def _key(v) -> str:
    """A key attribute as base64 text: pyroute2 hands out the decoded value (base64 bytes) or,
    depending on version, the attribute with ``value``/``key`` fields."""
    if not isinstance(v, (bytes, str)):
        v = v.get("value") or keys.encode(v["key"])
    return v.decode() if isinstance(v, bytes) else str(v)


class Kernel:
    kind = "kernel"

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._wg = None  # pyroute2's WireGuard socket, opened on first use

    def close(self) -> None:
        if self._wg is not None:
            wg, self._wg = self._wg, None
            wg.close()

    def _socket(self):
        if self._wg is None:
            from pyroute2 import WireGuard
            from pyroute2.netlink.exceptions import NetlinkError

            try:
                self._wg = WireGuard()
            except NetlinkError as e:
                raise NoSuchDevice(
                    f"{self.ifname}: the kernel has no WireGuard "
                    f"(generic netlink family missing: {e})"
                ) from None
        return self._wg

    def _call(self, method: str, *args, **kw):
        # no interface: nothing to ask (and no generic-netlink socket, whose library logs about
        # a missing module on every attempt); asked over rtnetlink, where a missing link is an
        # answer rather than a failing ioctl (socket.if_nametoindex)
        try:
            present = netlink.link(self.ifname) is not None
        except OSError as e:
            raise WireGuardError(f"{self.ifname}: netlink: {e.strerror or e}") from None
        if not present:
            raise NoSuchDevice(f"{self.ifname}: no such interface") from None
        from pyroute2.netlink.exceptions import NetlinkError

        wg = self._socket()
        try:
            return getattr(wg, method)(self.ifname, *args, **kw)
        except NetlinkError as e:
            if e.code in (errnos.ENODEV, errnos.ENOENT, errnos.EOPNOTSUPP):
                raise NoSuchDevice(f"{self.ifname}: no kernel WireGuard interface ({e})") from None
            raise WireGuardError(f"{self.ifname}: netlink error {e}") from None
        except OSError as e:  # the socket itself failed: the next call opens a new one
            self.close()
            raise WireGuardError(f"{self.ifname}: netlink: {e.strerror or e}") from None

    def read(self) -> Device:
        public_key = None
        listen_port = 0
        peers: list[Peer] = []
        for msg in self._call("info"):  # large devices come in several messages
            pk = msg.get_attr("WGDEVICE_A_PUBLIC_KEY")
            if pk is not None:
                public_key = _key(pk)
            port = msg.get_attr("WGDEVICE_A_LISTEN_PORT")
            if port is not None:
                listen_port = int(port)
            for p in msg.get_attr("WGDEVICE_A_PEERS") or ():
                peers.append(_peer(p))
        return Device(self.ifname, self.kind, public_key, listen_port, tuple(_merge(peers)))

    def configure(self, update: Update) -> None:
        if not update:
            return
        if update.replace_peers:
            for p in self.read().peers:
                if not any(u.public_key == p.public_key for u in update.peers):
                    self._call("set", peer={"public_key": p.public_key, "remove": True})
        if update.private_key is not None or update.listen_port is not None:
            self._call(
                "set",
                private_key=update.private_key.reveal() if update.private_key else None,
                listen_port=update.listen_port,
            )
        for u in update.peers:
            peer: dict = {"public_key": u.public_key}
            if u.remove:
                peer["remove"] = True
            else:
                if u.endpoint is not None:
                    host, port = split_endpoint(u.endpoint)
                    peer["endpoint_addr"], peer["endpoint_port"] = host, port
                if u.keepalive is not None:
                    peer["persistent_keepalive"] = u.keepalive
                if u.allowed_ips is not None:
                    peer["replace_allowed_ips"] = True
                    peer["allowed_ips"] = list(u.allowed_ips)
            self._call("set", peer=peer)


def _peer(p) -> Peer:
    ep = p.get_attr("WGPEER_A_ENDPOINT")
    endpoint = None
    if ep is not None and ep.get("port"):
        endpoint = join_endpoint(ep["addr"], ep["port"])
    hs = p.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
    last = None
    if hs is not None and (hs["tv_sec"] or hs["tv_nsec"]):
        last = hs["tv_sec"] + hs["tv_nsec"] / 1e9
    allowed = []
    for a in p.get_attr("WGPEER_A_ALLOWEDIPS") or ():
        if a.get("addr"):
            allowed.append(a["addr"])
    return Peer(
        public_key=_key(p.get_attr("WGPEER_A_PUBLIC_KEY")),
        endpoint=endpoint,
        last_handshake=last,
        rx_bytes=int(p.get_attr("WGPEER_A_RX_BYTES") or 0),
        tx_bytes=int(p.get_attr("WGPEER_A_TX_BYTES") or 0),
        keepalive=int(p.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0),
        allowed_ips=tuple(allowed),
    )


def _merge(peers: list[Peer]) -> list[Peer]:
    """A peer with many allowed IPs may be split over two dump messages: join them."""
    out: dict[str, Peer] = {}
    for p in peers:
        if p.public_key in out:
            q = out[p.public_key]
            out[p.public_key] = Peer(
                q.public_key,
                q.endpoint,
                q.last_handshake,
                q.rx_bytes,
                q.tx_bytes,
                q.keepalive,
                q.allowed_ips + p.allowed_ips,
            )
        else:
            out[p.public_key] = p
    return list(out.values())
