"""The one rtnetlink codec (stdlib only): dumps of links, addresses and routes, and the
subscription to address and route changes.

Why not pyroute2 (which the mesh code uses to *change* links, addresses and routes):

- **Import cost.** ``import pyroute2`` costs a few hundred milliseconds and its first ``IPRoute``
  another ~15 ms and an asyncio event loop; the bare-metal discovery path needs three dumps and
  nothing else, and the daemon's periodic checks would build a loop each time.
- **The subscription cannot be ``select``-ed.** Since 0.9.1 pyroute2's core is "rewritten using
  asyncio" (its CHANGELOG; https://docs.pyroute2.org/asyncio.html): the synchronous ``IPRoute``
  runs the asynchronous core on its own event loop, which reads the socket into a message queue
  (``pyroute2/netlink/core.py``, ``CoreMessageQueue``), and ``get()`` hands out what is buffered
  there. A ``select`` on the socket's descriptor then misses messages already read into the
  queue, so the daemon's loop would sleep through an address change.

This module speaks just enough of the protocol (``linux/netlink.h``, ``linux/rtnetlink.h``,
``linux/if_addr.h``) for that: requests of the dumps, and parsing of link, address and route
messages, the same parser for a dump's answers and for the subscription's events; and, for the
periodic checks, one link asked for by name (``link``: a missing one is the kernel's answer, not a
failing ``ioctl``) and a link created and deleted (``create_link``: the kernel-WireGuard
probe).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

from k3snode.record import record

NETLINK_ROUTE = 0
# RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE
ADDRESS_AND_ROUTE_GROUPS = 0x10 | 0x40 | 0x100 | 0x400
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

IFLA_IFNAME = 3
IFLA_LINKINFO, IFLA_INFO_KIND = 18, 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
RTA_DST, RTA_OIF, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 6, 9, 15

_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_RTATTR = struct.Struct("=HH")  # len, type
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
)  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_RTNH = struct.Struct("=HBBi")  # len, flags, hops, ifindex


@record
class Link:
    """A network interface from an RTM_NEWLINK message."""

    index: int
    name: str
    flags: int = 0  # IFF_*: 1 = up


@record
class Addr:
    """An interface address from an RTM_NEWADDR message."""

    family: int
    index: int
    prefixlen: int
    scope: int
    flags: int  # IFA_FLAGS when present (32 bits), else the 8-bit header flags
    address: str | None  # IFA_LOCAL, else IFA_ADDRESS


@record
class Route:
    """A route from an RTM_NEWROUTE message."""

    family: int
    dst_len: int
    table: int
    type: int
    priority: int
    oifs: tuple[int, ...] = ()  # RTA_OIF, or every multipath hop
    dst: str | None = None  # RTA_DST; None for a default route
    proto: int = 0  # RTPROT_*: 4 = static (set by a tool such as k3snode)


class Refused(OSError):
    """The kernel answered a request with an error (``errno`` is the kernel's); other
    ``OSError``s are the socket's own."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        out.setdefault(kind & 0x3FFF, data[offset + _RTATTR.size : offset + length])
        offset += _align(length)
    return out


def _attr(kind: int, value: bytes) -> bytes:
    length = _RTATTR.size + len(value)
    return _RTATTR.pack(length, kind) + value + b"\0" * (_align(length) - length)


def _dump(msg_type: int, body: bytes, flags: int = NLM_F_DUMP) -> Iterator[bytes]:
    """Send one request (a dump by default; ``NLM_F_ACK`` for one that ends with the kernel's
    acknowledgement); yield each answer message's payload (after the netlink header)."""
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
    ) as s:
        s.bind((0, 0))
        seq = 1
        s.sendall(
            _NLMSG.pack(_NLMSG.size + len(body), msg_type, NLM_F_REQUEST | flags, seq, 0) + body
        )
        pid = s.getsockname()[0]
        while True:
            data = s.recv(65536)
            if not data:
                return
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _flags, mseq, mpid = _NLMSG.unpack_from(data, offset)
                if length < _NLMSG.size:
                    return
                payload = data[offset + _NLMSG.size : offset + length]
                offset += _align(length)
                if mseq != seq or (mpid and mpid != pid):
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise Refused(-code, os.strerror(-code))
                    return
                yield payload


def _link(p: bytes) -> Link:
    _fam, _type, index, flags, _change = _IFINFO.unpack_from(p)
    name = _attrs(p, _IFINFO.size).get(IFLA_IFNAME, b"").split(b"\0", 1)[0]
    return Link(index, name.decode("utf-8", "replace"), flags)


def links() -> list[Link]:
    return [_link(p) for p in _dump(RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0))]


def _by_name(name: str) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_IFNAME, name.encode() + b"\0")


def link(name: str) -> Link | None:
    """The link named ``name``, or None: one request for it alone (a node with a veth per pod
    answers it as fast as one without), and an absent link is the kernel's answer (``ENODEV``),
    not a failing syscall as with ``socket.if_nametoindex``."""
    try:
        for p in _dump(RTM_GETLINK, _by_name(name), NLM_F_ACK):
            return _link(p)
    except Refused as e:
        if e.errno == errno.ENODEV:
            return None
        raise
    return None


def create_link(name: str, kind: str) -> None:
    """``ip link add NAME type KIND``. Raises ``Refused`` with the kernel's errno (``EPERM``
    without ``CAP_NET_ADMIN``, ``EOPNOTSUPP`` for a kind the kernel does not have)."""
    info = _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, kind.encode()))
    for _ in _dump(RTM_NEWLINK, _by_name(name) + info, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL):
        pass


def delete_link(name: str) -> None:
    """``ip link del NAME``; ``Refused`` (``ENODEV``) when there is none."""
    for _ in _dump(RTM_DELLINK, _by_name(name), NLM_F_ACK):
        pass


def _addr(p: bytes) -> Addr:
    fam, prefixlen, flags, scope, index = _IFADDR.unpack_from(p)
    attrs = _attrs(p, _IFADDR.size)
    if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) >= 4:
        (flags,) = struct.unpack_from("=I", attrs[IFA_FLAGS])
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    addr = _ntop(fam, raw)
    return Addr(fam, index, prefixlen, scope, flags, addr)


def _route(p: bytes) -> Route:
    fam, dst_len, _src, _tos, table, proto, _scope, rtype, _flags = _RTMSG.unpack_from(p)
    attrs = _attrs(p, _RTMSG.size)
    if RTA_TABLE in attrs and len(attrs[RTA_TABLE]) >= 4:
        (table,) = struct.unpack_from("=I", attrs[RTA_TABLE])
    priority = 0
    if len(attrs.get(RTA_PRIORITY, b"")) >= 4:
        (priority,) = struct.unpack_from("=I", attrs[RTA_PRIORITY])
    oifs: list[int] = []
    if len(attrs.get(RTA_OIF, b"")) >= 4:
        oifs.append(struct.unpack_from("=i", attrs[RTA_OIF])[0])
    hops = attrs.get(RTA_MULTIPATH, b"")
    offset = 0
    while offset + _RTNH.size <= len(hops):
        length, _f, _h, ifindex = _RTNH.unpack_from(hops, offset)
        if length < _RTNH.size:
            break
        oifs.append(ifindex)
        offset += _align(length)
    dst = _ntop(fam, attrs.get(RTA_DST))
    return Route(fam, dst_len, table, rtype, priority, tuple(oifs), dst, proto)


def _ntop(family: int, raw: bytes | None) -> str | None:
    if raw and family in (socket.AF_INET, socket.AF_INET6) and len(raw) in (4, 16):
        try:
            return socket.inet_ntop(family, raw)
        except ValueError:  # a 4-byte IPv6 or 16-byte IPv4 value
            return None
    return None


def addresses(family: int) -> list[Addr]:
    out = []
    for p in _dump(RTM_GETADDR, _IFADDR.pack(family, 0, 0, 0, 0)):
        a = _addr(p)
        if a.family == family:
            out.append(a)
    return out


def routes(family: int) -> list[Route]:
    out = []
    for p in _dump(RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
        r = _route(p)
        if r.family == family:
            out.append(r)
    return out


@record
class Change:
    """One event of the subscription: an address or a route added (``added``) or removed."""

    added: bool
    item: Addr | Route


def parse_events(data: bytes) -> Iterator[Change]:
    """The address and route changes in one datagram of the subscription (others skipped)."""
    off = 0
    while off + _NLMSG.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            return
        payload = data[off + _NLMSG.size : off + length]
        off += _align(length)
        if mtype in (RTM_NEWADDR, RTM_DELADDR) and len(payload) >= _IFADDR.size:
            yield Change(mtype == RTM_NEWADDR, _addr(payload))
        elif mtype in (RTM_NEWROUTE, RTM_DELROUTE) and len(payload) >= _RTMSG.size:
            yield Change(mtype == RTM_NEWROUTE, _route(payload))


class Subscription:
    """A non-blocking socket bound to ``groups``; ``fileno()`` for select, ``read()`` drains.

    ``read()`` returns the changes pending now and whether the kernel dropped some (``ENOBUFS``:
    the receive buffer overran; the caller should look again rather than trust the events)."""

    def __init__(self, groups: int = ADDRESS_AND_ROUTE_GROUPS) -> None:
        sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, groups))
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> tuple[list[Change], bool]:
        changes: list[Change] = []
        overrun = False
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return changes, overrun
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    overrun = True
                    continue
                raise
            changes.extend(parse_events(data))

    def close(self) -> None:
        self._sock.close()
