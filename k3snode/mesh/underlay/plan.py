"""What the settings want of the underlay, as plain data: the peers (without this node), the host
routes, how names are resolved, what a pass changed, and what the last pass saw.

Pure functions and frozen data; the keeper (``keeper.py``) acts on them and the health check
(``checks.py``) judges them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from k3snode.config.model import Settings
from k3snode.mesh.wg.types import Device
from k3snode.record import field, record

Resolver = Callable[[str, int], str]


def resolve(host: str, port: int) -> str:
    """The first address the system resolver gives for ``host`` (as ``getaddrinfo`` orders them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {host}")
    return infos[0][4][0]


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@record
class Wanted:
    """One peer as the settings want it."""

    public_key: str
    name: str
    host: str
    port: int
    allowed_ips: tuple[str, ...]
    keepalive: int


@record(frozen=False)
class Result:
    """What one pass did: ``changes`` as log lines; ``notes``: problems that did not stop it."""

    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@record
class Seen:
    """What the keeper's last pass found: the device as it is after the pass, or why there is
    none (``problem``: the pass failed). The daemon hands it to the health check, so the check
    reads nothing itself."""

    device: Device | None
    at: float  # wall time of the read
    problem: str | None = None


def host_prefix(address: str) -> str:
    ip = ipaddress.ip_address(address.split("/", 1)[0])
    return f"{ip}/{32 if ip.version == 4 else 128}"


def wanted_peers(settings: Settings, own_public_key: str) -> list[Wanted]:
    """The settings' peers, without this node itself (the same list may be baked into every
    server: a peer with this node's key or underlay address is skipped)."""
    ul = settings.underlay
    own_ip = ul.address.split("/", 1)[0]
    out = []
    for p in ul.peers:
        if p.public_key == own_public_key or p.address.split("/", 1)[0] == own_ip:
            continue
        host, _, port = p.endpoint.rpartition(":")
        out.append(
            Wanted(
                public_key=p.public_key,
                name=p.name or host.strip("[]"),
                host=host.strip("[]"),
                port=int(port),
                allowed_ips=(host_prefix(p.address),),
                keepalive=ul.keepalive if p.keepalive is None else p.keepalive,
            )
        )
    return out


def route_targets(settings: Settings, peers: list[Wanted]) -> list[str]:
    """Peer addresses outside this node's underlay prefix need a host route via the interface."""
    net = ipaddress.ip_interface(settings.underlay.address).network
    out = []
    for p in peers:
        for a in p.allowed_ips:
            n = ipaddress.ip_network(a)
            if n.version != net.version or not n.subnet_of(net):
                out.append(str(n))
    return out
