"""Peer health of a WireGuard interface, and the observer of flannel's ``flannel-wg`` interfaces.

A WireGuard session is re-keyed every 120 s (REKEY_AFTER_TIME) while packets flow, and a peer with
persistent keepalive always has packets flowing. So a peer whose latest handshake is older than
120 s plus a few keepalive periods has no working session: it is *stale*. A peer without
keepalive may simply be idle and is never called stale; one that never completed a handshake is
stale once it has had that long since k3snode first saw it — which is why judging needs memory:
a ``PeerJudge`` keeps it, owned by whoever judges repeatedly (the flannel observer, the underlay
keeper). ``Flannel`` is the daemon's observer of flannel's interfaces; the daemon keeps one, with
its judge, its open backends (one netlink socket, not one per check) and its ``KernelCheck``.
While an interface is missing its check makes no failing syscall and loads no pyroute2: the link is
asked for by name over rtnetlink (``netlink.link``: "no such device" is an answer), and only an
interface that exists is given a backend (the wireguard-go socket looked for once per interface).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from k3snode import netlink
from k3snode.health.checks import Observation, PeerHealth
from k3snode.k3s import effective, families
from k3snode.mesh.wg.kernel import Kernel
from k3snode.mesh.wg.link import open_backend
from k3snode.mesh.wg.preflight import KernelCheck
from k3snode.mesh.wg.types import (
    SOCKET_DIR,
    Backend,
    Device,
    NoSuchDevice,
    Peer,
    WireGuardError,
    userspace_socket,
)
from k3snode.mesh.wg.userspace import Userspace

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

REKEY_AFTER_TIME = 120.0
STALE_PERIODS = 3
MAX_PEER_FACTS = 20
FLANNEL_INTERFACES = ("flannel-wg", "flannel-wg-v6")
FLANNEL_INTERFACES_BY_FAMILY = ((4, "flannel-wg"), (6, "flannel-wg-v6"))


def stale_after(keepalive: int) -> float | None:
    """Seconds without a handshake after which a peer with this keepalive is stale."""
    if keepalive <= 0:
        return None
    return REKEY_AFTER_TIME + STALE_PERIODS * keepalive


class PeerJudge:
    """Judges peers stale or not, remembering when it first saw each peer without a handshake."""

    def __init__(self) -> None:
        self._first_seen: dict[tuple[str, str], float] = {}  # (interface, public key) -> time

    def is_stale(self, ifname: str, peer: Peer, now: float, threshold: float | None = None) -> bool:
        """``threshold`` overrides the keepalive-derived one (tests use a few seconds)."""
        limit = threshold if threshold is not None else stale_after(peer.keepalive)
        if limit is None:
            return False
        if peer.last_handshake is None:
            since = self._first_seen.setdefault((ifname, peer.public_key), now)
            return now - since > limit
        self._first_seen.pop((ifname, peer.public_key), None)
        return now - peer.last_handshake > limit

    def peer_health(
        self,
        dev: Device,
        now: float,
        threshold: float | None = None,
        names: dict[str, str] | None = None,
    ) -> tuple[PeerHealth, ...]:
        names = names or {}
        present = {(dev.ifname, p.public_key) for p in dev.peers}
        for gone in [k for k in self._first_seen if k[0] == dev.ifname and k not in present]:
            del self._first_seen[gone]
        return tuple(
            PeerHealth(
                interface=dev.ifname,
                public_key=p.public_key,
                endpoint=p.endpoint,
                last_handshake=p.last_handshake,
                rx_bytes=p.rx_bytes,
                tx_bytes=p.tx_bytes,
                stale=self.is_stale(dev.ifname, p, now, threshold),
                name=names.get(p.public_key, ""),
            )
            for p in dev.peers
        )


def age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def summarize(check: str, dev: Device, peers: tuple[PeerHealth, ...], now: float) -> Observation:
    stale = [p for p in peers if p.stale]
    facts = {
        "backend": dev.backend,
        "listen_port": str(dev.listen_port),
        "peers": str(len(peers)),
        "stale": str(len(stale)),
    }
    # one line per peer for `k3snode status` (the status file keeps facts, not peers)
    for p in peers[:MAX_PEER_FACTS]:
        hs = f"handshake {age(now - p.last_handshake)} ago" if p.last_handshake else "no handshake"
        facts[f"peer {p.name or p.public_key[:8] + '…'}"] = (
            f"{'stale' if p.stale else 'ok'}, {p.endpoint or 'no endpoint'}, {hs}, "
            f"rx {p.rx_bytes} tx {p.tx_bytes}"
        )
    if not peers:
        return Observation(check, True, f"{dev.ifname}: up, no peers yet", peers, facts)
    if stale:
        shown = ", ".join(
            f"{p.name or p.public_key[:8] + '…'} ({p.endpoint or 'no endpoint'}, "
            + (
                f"handshake {age(now - p.last_handshake)} ago"
                if p.last_handshake
                else "no handshake"
            )
            + ")"
            for p in stale[:3]
        )
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        detail = f"{dev.ifname}: {len(stale)} of {len(peers)} peers stale: {shown}{more}"
        return Observation(check, False, detail, peers, facts)
    newest = max((p.last_handshake for p in peers if p.last_handshake), default=None)
    tail = f", newest handshake {age(now - newest)} ago" if newest else ""
    return Observation(
        check, True, f"{dev.ifname}: {len(peers)} peers, none stale{tail}", peers, facts
    )


def observe(
    ifname: str,
    check: str | None = None,
    now: float | None = None,
    threshold: float | None = None,
    socket_dir: str = SOCKET_DIR,
    judge: PeerJudge | None = None,
) -> Observation:
    """Read ``ifname`` (kernel or userspace) once and judge its peers. Without a ``judge`` that
    outlives the call, a peer that never had a handshake is not called stale."""
    check = check or f"wireguard:{ifname}"
    now = time.time() if now is None else now
    backend = open_backend(ifname, socket_dir)
    try:
        dev = backend.read()
    except NoSuchDevice:
        return Observation(check, False, f"{ifname} does not exist")
    except WireGuardError as e:
        return Observation(check, False, str(e))
    finally:
        backend.close()
    return summarize(check, dev, (judge or PeerJudge()).peer_health(dev, now, threshold), now)


class Flannel:
    """The observer (``health.registry.observers()``) for flannel's WireGuard interfaces when mesh is wireguard-native; the
    daemon keeps one and calls it with the settings every health interval.

    flannel creates ``flannel-wg`` only when the cluster has IPv4 and ``flannel-wg-v6`` only when
    it has IPv6 (flannel ``pkg/backend/wireguard/wireguard.go``, ``RegisterNetwork``, "separate"
    mode as K3s configures it), so an IPv6-only cluster has no ``flannel-wg`` at all. The families
    come from the K3s config as K3s reads it (``k3s/effective.py``, ``k3s/families.py``): an interface
    of a family the node certainly runs is reported when missing (K3s not up yet: the health
    grace period covers a start); one of a family that may or may not run is reported only when
    present.

    Between calls it keeps the peers' first sightings (``PeerJudge``), each interface's backend
    with the link's index (a kernel backend keeps its one netlink socket) and the kernel check's
    last answer.
    """

    def __init__(self, socket_dir: str = SOCKET_DIR, kernel: KernelCheck | None = None) -> None:
        self.socket_dir = socket_dir
        self.judge = PeerJudge()
        self.kernel = kernel or KernelCheck()
        self._backends: dict[str, tuple[int, Backend]] = {}  # ifname -> (link index, backend)

    def __call__(self, settings: Settings) -> list[Observation]:
        if settings.mesh != "wireguard-native":
            self.close()
            return []
        view = effective.load(settings.k3s.config, settings.k3s.unit)
        fams = families.ip_families(view.values(), settings.role)
        out = []
        for family, ifname in FLANNEL_INTERFACES_BY_FAMILY:
            if family not in fams.required | fams.optional:
                continue
            obs = self.observe(ifname)
            if obs.detail == f"{ifname} does not exist":
                if family not in fams.required:
                    continue
                problem = self.kernel.problem()
                why = problem or f"K3s or flannel not up yet? IPv{family} from {fams.why}"
                obs = Observation(obs.check, False, f"{ifname} does not exist ({why})")
            out.append(obs)
        return out

    def observe(self, ifname: str, now: float | None = None) -> Observation:
        check = f"wireguard:{ifname}"
        now = time.time() if now is None else now
        try:
            link = netlink.link(ifname)
        except OSError as e:
            return Observation(check, False, f"{ifname}: netlink: {e.strerror or e}")
        if link is None:
            self._drop(ifname)
            return Observation(check, False, f"{ifname} does not exist")
        backend = self._backend(ifname, link.index)
        try:
            dev = backend.read()
        except NoSuchDevice:
            self._drop(ifname)
            return Observation(check, False, f"{ifname} does not exist")
        except WireGuardError as e:
            self._drop(ifname)
            return Observation(check, False, str(e))
        return summarize(check, dev, self.judge.peer_health(dev, now), now)

    def _backend(self, ifname: str, index: int) -> Backend:
        """The interface's backend from the last call while it is the same link (its index);
        for a new link (wireguard-go replaced by the kernel or back is a new link) the one its
        kind needs: userspace when wireguard-go's socket is there."""
        kept = self._backends.get(ifname)
        if kept is not None and kept[0] == index:
            return kept[1]
        self._drop(ifname)
        userspace = os.path.exists(userspace_socket(ifname, self.socket_dir))
        b = Userspace(ifname, self.socket_dir) if userspace else Kernel(ifname)
        self._backends[ifname] = (index, b)
        return b

    def _drop(self, ifname: str) -> None:
        kept = self._backends.pop(ifname, None)
        if kept is not None:
            kept[1].close()

    def close(self) -> None:
        for ifname in list(self._backends):
            self._drop(ifname)
