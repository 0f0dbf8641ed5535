"""Notice address and default-route changes: an rtnetlink multicast subscription.

A plain ``AF_NETLINK`` socket bound to the IPv4/IPv6 address and route groups, read without
blocking from the daemon's ``select`` loop. It is parsed here (headers only, about 40 lines)
rather than with pyroute2 because pyroute2 0.9's ``IPRoute.get()`` hands out one buffered message
per call, so a ``select`` on its socket misses messages already read into the buffer.

Only events that can change the node's addresses ask for a pass: a global address added or
removed on a non-virtual interface, or a default route of the main table added or removed.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
GROUPS = 0x10 | 0x40 | 0x100 | 0x400  # RTMGRP_IPV4_IFADDR, _IPV4_ROUTE, _IPV6_IFADDR, _IPV6_ROUTE
RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 20, 21, 24, 25
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE = 0
_NLMSG = struct.Struct("=IHHII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table proto scope type flags
_RTATTR = struct.Struct("=HH")


@dataclass(frozen=True)
class Event:
    kind: str  # "addr" | "route"
    added: bool
    family: int
    index: int = 0
    scope: int = 0
    address: str = ""
    table: int = 0
    dst_len: int = 0


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    off = start
    while off + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, off)
        if length < _RTATTR.size:
            return
        yield kind & 0x3FFF, data[off + _RTATTR.size : off + length]
        off += _align(length)


def parse(data: bytes) -> Iterator[Event]:
    """The address and route events in one datagram (other messages are skipped)."""
    off = 0
    while off + _NLMSG.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            return
        body, end = off + _NLMSG.size, off + length
        if mtype in (RTM_NEWADDR, RTM_DELADDR) and body + _IFADDR.size <= end:
            family, _plen, _f, scope, index = _IFADDR.unpack_from(data, body)
            addrs = dict(_attrs(data, body + _IFADDR.size, end))
            raw = addrs.get(IFA_LOCAL) or addrs.get(IFA_ADDRESS) or b""
            text = ""
            if family in (socket.AF_INET, socket.AF_INET6) and len(raw) in (4, 16):
                text = socket.inet_ntop(family, raw)
            yield Event("addr", mtype == RTM_NEWADDR, family, index, scope, text)
        elif mtype in (RTM_NEWROUTE, RTM_DELROUTE) and body + _RTMSG.size <= end:
            family, dst_len, _s, _t, table, _p, scope, _ty, _fl = _RTMSG.unpack_from(data, body)
            for kind, value in _attrs(data, body + _RTMSG.size, end):
                if kind == RTA_TABLE and len(value) == 4:
                    table = struct.unpack("=I", value)[0]
            yield Event(
                "route", mtype == RTM_NEWROUTE, family, scope=scope, table=table, dst_len=dst_len
            )
        off += _align(length)


def relevant(ev: Event) -> str | None:
    """Why this event may change the node's external addresses, or None."""
    verb = "added" if ev.added else "removed"
    if ev.kind == "addr":
        if ev.scope != RT_SCOPE_UNIVERSE:
            return None
        name = _ifname(ev.index)
        if name is not None:
            from k3snode.discovery.interfaces import is_virtual

            if is_virtual(name):
                return None
        return f"address {ev.address or '?'} {verb} on {name or ev.index}"
    if ev.table == RT_TABLE_MAIN and ev.dst_len == 0:
        return f"default route {verb}"
    return None


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except (OSError, ValueError):
        return None  # the interface is already gone


class Watch:
    """The subscription; ``fileno()`` for select, ``read()`` drains what is pending."""

    def __init__(self) -> None:
        sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            NETLINK_ROUTE,
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, GROUPS))
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[str]:
        """Reasons of the relevant events pending now (an overrun counts as one)."""
        reasons: list[str] = []
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return reasons
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # the kernel dropped events: look anyway
                    reasons.append("netlink overrun")
                    continue
                raise
            reasons.extend(r for r in map(relevant, parse(data)) if r)

    def close(self) -> None:
        self._sock.close()
