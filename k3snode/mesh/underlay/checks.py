"""The underlay's health and its preflight. Both only read: the interface is made and kept by
the keeper (``keeper.py``), which the daemon drives; the health check judges what the keeper's
last pass saw (``Seen``, handed over by the daemon), so a periodic check opens no socket at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

from k3snode.config.model import Settings
from k3snode.health.checks import Finding, Observation
from k3snode.mesh.underlay.plan import Seen, is_ip, resolve, wanted_peers
from k3snode.mesh.wg import health as wgh
from k3snode.mesh.wg import keys, link
from k3snode.mesh.wg import preflight as wgp
from k3snode.mesh.wg import types as wg

log = logging.getLogger(__name__)

CHECK = "underlay"


def names(settings: Settings) -> dict[str, str]:
    """Public key → the peer's name for status output (its name, else its endpoint's host)."""
    return {p.public_key: p.name or p.endpoint.rpartition(":")[0] for p in settings.underlay.peers}


def judge(
    settings: Settings,
    seen: Seen,
    threshold: float | None = None,
    peer_judge: wgh.PeerJudge | None = None,
) -> Observation:
    """The ``underlay`` check from what a pass (or a read) saw: not ok when the pass failed, the
    interface is missing, or a peer is stale. ``peer_judge`` remembers when a peer without a
    handshake was first seen: the daemon hands over its keeper's, a one-shot check a new one."""
    if seen.problem is not None or seen.device is None:
        return Observation(CHECK, False, seen.problem or "underlay not set up yet")
    dev = seen.device
    pj = peer_judge if peer_judge is not None else wgh.PeerJudge()
    peers = pj.peer_health(dev, seen.at, threshold, names(settings))
    obs = wgh.summarize(CHECK, dev, peers, seen.at)
    facts = {**obs.facts, "address": settings.underlay.address}
    return Observation(obs.check, obs.ok, obs.detail, obs.peers, facts)


def read(settings: Settings, socket_dir: str = wg.SOCKET_DIR) -> Seen:
    """The interface as it is now (one read, its backend closed after; for ``k3snode wireguard
    show``, which has no keeper)."""
    ul = settings.underlay
    now = time.time()
    backend = link.open_backend(ul.interface, socket_dir)
    try:
        dev = backend.read()
    except wg.NoSuchDevice:
        return Seen(None, now, f"{ul.interface} does not exist (underlay down)")
    except wg.WireGuardError as e:
        return Seen(None, now, str(e))
    finally:
        backend.close()
    return Seen(dev, now)


def observe(
    settings: Settings,
    seen: Seen | None = None,
    threshold: float | None = None,
    socket_dir: str = wg.SOCKET_DIR,
    peer_judge: wgh.PeerJudge | None = None,
) -> Observation:
    """The ``underlay`` check: of ``seen`` (the daemon's keeper's last pass, judged with the
    keeper's ``judge``) when given, else of one read of the interface now."""
    got = read(settings, socket_dir) if seen is None else seen
    return judge(settings, got, threshold, peer_judge)


# -- preflight ---------------------------------------------------------------------------------


def embedded_etcd(settings: Settings) -> bool:
    """A server whose datastore is embedded etcd: it initialises a cluster or joins one."""
    if settings.role != "server" or "datastore-endpoint" in settings.k3s.options:
        return False
    return bool(settings.k3s.cluster_init or settings.k3s.server)


def _across_networks(settings: Settings) -> list[Finding]:
    if embedded_etcd(settings) and settings.mesh != "none":
        return [
            Finding(
                "warning",
                "underlay",
                "this server runs embedded etcd and its nodes join over "
                f"mesh {settings.mesh} (across networks): K3s does not support etcd members "
                "that reach each other only over public addresses. Enable [underlay] so the "
                "servers peer over a private WireGuard network, or keep all servers in one "
                "private network.",
            )
        ]
    return []


def _key(settings: Settings) -> tuple[str, list[Finding], bool]:
    """(public key or "", findings, fatal). A check changes nothing: the key is created by the
    first pass (or ``wireguard pubkey``)."""
    ul = settings.underlay
    where = settings.where("underlay", "private_key_file")
    path = ul.private_key_file
    try:
        pub = keys.public_key(keys.read(path))
    except FileNotFoundError:
        return "", [Finding("ok", "underlay", f"{ul.interface} {ul.address}; private key {path} "
                            "will be created on first start")], False  # fmt: skip
    except keys.BadKey as e:
        return "", [Finding("error", "underlay", f"{where}: {e}")], True
    except OSError as e:
        return (
            "",
            [Finding("error", "underlay", f"{where}: cannot read {path} ({e.strerror})")],
            True,
        )
    out = [Finding("ok", "underlay", f"{ul.interface} {ul.address}, public key {pub}")]
    if os.stat(path).st_mode & 0o077:
        out.append(Finding("warning", "underlay", f"{path} is readable by others; k3snode "
                           "makes it 0600 on its next pass"))  # fmt: skip
    return pub, out, False


def _peers(settings: Settings, pub: str) -> list[Finding]:
    out = []
    peers = wanted_peers(settings, pub)
    if not peers:
        out.append(
            Finding("warning", "underlay", "no peers besides this node in [[underlay.peers]]")
        )
    for w in peers:
        if not is_ip(w.host):
            try:
                resolve(w.host, w.port)
            except (OSError, UnicodeError) as e:
                out.append(Finding("warning", "underlay", f"peer {w.name}: cannot resolve "
                                   f"{w.host} ({e}); it is added without endpoint until it does"))  # fmt: skip
    seen: dict[str, str] = {}
    for p in settings.underlay.peers:
        ip = p.address.split("/", 1)[0]
        if ip in seen and seen[ip] != p.public_key:
            out.append(Finding("error", "underlay", f"two peers have the underlay address {ip}"))
        seen[ip] = p.public_key
    return out


def _interface(settings: Settings) -> list[Finding]:
    """When the interface is not there yet: can it be made, and is its port free?"""
    ul = settings.underlay
    if link.existing_backend_quiet(ul.interface) is not None:
        return []
    out = []
    kernel, _ = wgp.kernel_wireguard()
    if not kernel:
        if ul.userspace == "never":
            out.append(Finding("error", "underlay", "the kernel has no WireGuard and "
                               "[underlay] userspace = never"))  # fmt: skip
        elif not shutil.which("wireguard-go"):
            out.append(Finding("error", "underlay", "the kernel has no WireGuard and "
                               "wireguard-go is not installed"))  # fmt: skip
        else:
            out.append(Finding("ok", "underlay", "no kernel WireGuard: wireguard-go will run it"))
    holders = wgp.udp_port_holders(ul.listen_port)
    if holders:
        out.append(Finding("warning", "underlay", f"UDP {ul.listen_port} is already held by "
                           f"{', '.join(holders)}"))  # fmt: skip
    return out


def preflight(settings: Settings) -> list[Finding]:
    """The PREFLIGHTS entry: embedded etcd across networks without the underlay; the underlay's
    own prerequisites when it is on."""
    if not settings.underlay.enabled:
        return _across_networks(settings)
    pub, out, fatal = _key(settings)
    if fatal:
        return out
    return out + _peers(settings, pub) + _interface(settings)
