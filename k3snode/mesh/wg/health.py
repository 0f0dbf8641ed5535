"""Peer health of a WireGuard interface, and the observer of flannel's ``flannel-wg`` interfaces.

A WireGuard session is re-keyed every 120 s (REKEY_AFTER_TIME) while packets flow, and a peer with
persistent keepalive always has packets flowing. So a peer whose latest handshake is older than
120 s plus a few keepalive periods has no working session: it is *stale*. A peer without
keepalive may simply be idle and is never called stale; one that never completed a handshake is
stale once it has had that long since k3snode first saw it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Callable

from k3snode.health.checks import Observation, PeerHealth
from k3snode.mesh.wg import SOCKET_DIR, Device, NoSuchDevice, Peer, WireGuardError, open_backend

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

REKEY_AFTER_TIME = 120.0
STALE_PERIODS = 3
MAX_PEER_FACTS = 20
FLANNEL_INTERFACES = ("flannel-wg", "flannel-wg-v6")
FLANNEL_INTERFACES_BY_FAMILY = ((4, "flannel-wg"), (6, "flannel-wg-v6"))

# (interface, public key) -> when this process first saw the peer without a handshake
_first_seen: dict[tuple[str, str], float] = {}


def stale_after(keepalive: int) -> float | None:
    """Seconds without a handshake after which a peer with this keepalive is stale."""
    if keepalive <= 0:
        return None
    return REKEY_AFTER_TIME + STALE_PERIODS * keepalive


def is_stale(ifname: str, peer: Peer, now: float, threshold: float | None = None) -> bool:
    """``threshold`` overrides the keepalive-derived one (tests use a few seconds)."""
    limit = threshold if threshold is not None else stale_after(peer.keepalive)
    if limit is None:
        return False
    if peer.last_handshake is None:
        since = _first_seen.setdefault((ifname, peer.public_key), now)
        return now - since > limit
    _first_seen.pop((ifname, peer.public_key), None)
    return now - peer.last_handshake > limit


def peer_health(
    dev: Device,
    now: float,
    threshold: float | None = None,
    names: dict[str, str] | None = None,
) -> tuple[PeerHealth, ...]:
    names = names or {}
    present = {(dev.ifname, p.public_key) for p in dev.peers}
    for gone in [k for k in _first_seen if k[0] == dev.ifname and k not in present]:
        del _first_seen[gone]
    return tuple(
        PeerHealth(
            interface=dev.ifname,
            public_key=p.public_key,
            endpoint=p.endpoint,
            last_handshake=p.last_handshake,
            rx_bytes=p.rx_bytes,
            tx_bytes=p.tx_bytes,
            stale=is_stale(dev.ifname, p, now, threshold),
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
) -> Observation:
    """Read ``ifname`` (kernel or userspace) and judge its peers."""
    check = check or f"wireguard:{ifname}"
    now = time.time() if now is None else now
    try:
        dev = open_backend(ifname, socket_dir).read()
    except NoSuchDevice:
        return Observation(check, False, f"{ifname} does not exist")
    except WireGuardError as e:
        return Observation(check, False, str(e))
    return summarize(check, dev, peer_health(dev, now, threshold), now)


def flannel(settings: Settings) -> list[Observation]:
    """The OBSERVERS entry: flannel's WireGuard interfaces when mesh is wireguard-native.

    flannel creates ``flannel-wg`` only when the cluster has IPv4 and ``flannel-wg-v6`` only when
    it has IPv6 (flannel ``pkg/backend/wireguard/wireguard.go``, ``RegisterNetwork``, "separate"
    mode as K3s configures it), so an IPv6-only cluster has no ``flannel-wg`` at all. The families
    come from the K3s config as K3s reads it (``k3s/effective.py``, ``k3s/families.py``): an interface
    of a family the node certainly runs is reported when missing (K3s not up yet: the health
    grace period covers a start); one of a family that may or may not run is reported only when
    present.
    """
    if settings.mesh != "wireguard-native":
        return []
    from k3snode.k3s import effective, families

    view = effective.load(settings.k3s.config, settings.k3s.unit)
    fams = families.ip_families(view.values(), settings.role)
    out = []
    for family, ifname in FLANNEL_INTERFACES_BY_FAMILY:
        if family not in fams.required | fams.optional:
            continue
        obs = observe(ifname)
        if obs.detail == f"{ifname} does not exist":
            if family not in fams.required:
                continue
            problem = kernel_problem()
            why = problem or f"K3s or flannel not up yet? IPv{family} from {fams.why}"
            obs = Observation(obs.check, False, f"{ifname} does not exist ({why})")
        out.append(obs)
    return out


KERNEL_RECHECK = 600.0  # seconds: someone may install the module meanwhile
_kernel: tuple[float, str | None] | None = None  # (checked at, problem)


def kernel_problem(clock: Callable[[], float] = time.monotonic) -> str | None:
    """Why wireguard-native cannot work on this node (no kernel WireGuard), or None. The daemon's
    start-up check: asked when flannel-wg is missing, at most every KERNEL_RECHECK seconds, and
    logged as an error once when it turns bad."""
    global _kernel
    now = clock()
    if _kernel is not None and now - _kernel[0] < KERNEL_RECHECK:
        return _kernel[1]
    from k3snode.mesh.wg.preflight import kernel_wireguard

    ok, why = kernel_wireguard()
    problem = None
    if ok is True or (ok is None and os.path.isdir("/sys/module/wireguard")):
        pass  # it works, or the module is loaded (the probe could not say: no namespaces)
    elif module_installed():
        # Normal before K3s's first start: k3snode's unit may not load modules
        # (ProtectKernelModules=yes); K3s loads it. Not an error, and not logged by default.
        problem = "the wireguard module is not loaded yet; K3s loads it when it starts"
        log.debug("%s (%s)", problem, why)
    else:
        release = os.uname().release
        problem = (
            f"this kernel has no WireGuard module (Linux {release}): K3s's wireguard-native backend "
            "cannot work on this node; install the module (modprobe wireguard must work) or "
            'set [node] mesh = "tailscale"'
        )
        if _kernel is None or _kernel[1] != problem:
            from k3snode import logs

            log.error("%s", problem)
            logs.said(problem)
    _kernel = (now, problem)
    return problem


def module_installed(release: str | None = None, root: str = "/") -> bool:
    """The wireguard module is built in or installed for the running kernel (may be unloaded)."""
    release = release or os.uname().release
    base = os.path.join(root, "lib/modules", release)
    if os.path.isdir(os.path.join(root, "sys/module/wireguard")):
        return True
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(base, name), encoding="utf-8", errors="replace") as f:
                if any("/wireguard.ko" in line for line in f):
                    return True
        except OSError:
            continue
    return False
