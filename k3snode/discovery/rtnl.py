"""A minimal rtnetlink reader (stdlib only): dumps of links, routes and addresses.

The bare-metal discovery path needs three netlink dumps and nothing else; pyroute2 costs a few
hundred milliseconds of import and its first use another ~15 ms, which on bare metal would be most
of k3snode's time. This module speaks just enough of the protocol (``linux/netlink.h``,
``linux/rtnetlink.h``, ``linux/if_addr.h``) to read those dumps. The daemon's event subscription
is ``k3snode/netwatch.py``, also stdlib.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

NETLINK_ROUTE = 0
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_GETROUTE = 26

IFLA_IFNAME = 3
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


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    flags: int = 0  # IFF_*: 1 = up


@dataclass(frozen=True)
class Addr:
    family: int
    index: int
    prefixlen: int
    scope: int
    flags: int  # IFA_FLAGS when present (32 bits), else the 8-bit header flags
    address: str | None  # IFA_LOCAL, else IFA_ADDRESS


@dataclass(frozen=True)
class Route:
    family: int
    dst_len: int
    table: int
    type: int
    priority: int
    oifs: tuple[int, ...] = field(default_factory=tuple)  # RTA_OIF, or every multipath hop
    dst: str | None = None  # RTA_DST; None for a default route
    proto: int = 0  # RTPROT_*: 4 = static (set by a tool such as k3snode)


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


def _dump(msg_type: int, body: bytes) -> Iterator[bytes]:
    """Send one dump request; yield each answer message's payload (after the netlink header)."""
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
    ) as s:
        s.bind((0, 0))
        seq = 1
        s.sendall(
            _NLMSG.pack(_NLMSG.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
            + body
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
                    (errno,) = struct.unpack_from("=i", payload)
                    if errno:
                        raise OSError(-errno, os.strerror(-errno))
                    return
                yield payload


def links() -> list[Link]:
    out = []
    for p in _dump(RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        _fam, _type, index, flags, _change = _IFINFO.unpack_from(p)
        name = _attrs(p, _IFINFO.size).get(IFLA_IFNAME, b"").split(b"\0", 1)[0]
        out.append(Link(index, name.decode("utf-8", "replace"), flags))
    return out


def addresses(family: int) -> list[Addr]:
    out = []
    for p in _dump(RTM_GETADDR, _IFADDR.pack(family, 0, 0, 0, 0)):
        fam, prefixlen, flags, scope, index = _IFADDR.unpack_from(p)
        if fam != family:
            continue
        attrs = _attrs(p, _IFADDR.size)
        if IFA_FLAGS in attrs and len(attrs[IFA_FLAGS]) >= 4:
            (flags,) = struct.unpack_from("=I", attrs[IFA_FLAGS])
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        addr = socket.inet_ntop(fam, raw) if raw and len(raw) in (4, 16) else None
        out.append(Addr(fam, index, prefixlen, scope, flags, addr))
    return out


def routes(family: int) -> list[Route]:
    out = []
    for p in _dump(RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
        fam, dst_len, _src, _tos, table, proto, _scope, rtype, _flags = _RTMSG.unpack_from(p)
        if fam != family:
            continue
        attrs = _attrs(p, _RTMSG.size)
        if RTA_TABLE in attrs:
            (table,) = struct.unpack_from("=I", attrs[RTA_TABLE])
        priority = struct.unpack_from("=I", attrs[RTA_PRIORITY])[0] if RTA_PRIORITY in attrs else 0
        oifs: list[int] = []
        if RTA_OIF in attrs:
            oifs.append(struct.unpack_from("=i", attrs[RTA_OIF])[0])
        hops = attrs.get(RTA_MULTIPATH, b"")
        offset = 0
        while offset + _RTNH.size <= len(hops):
            length, _f, _h, ifindex = _RTNH.unpack_from(hops, offset)
            if length < _RTNH.size:
                break
            oifs.append(ifindex)
            offset += _align(length)
        raw = attrs.get(RTA_DST)
        dst = socket.inet_ntop(fam, raw) if raw and len(raw) in (4, 16) else None
        out.append(Route(fam, dst_len, table, rtype, priority, tuple(oifs), dst, proto))
    return out
