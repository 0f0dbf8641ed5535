"""The underlay's keeper: makes the interface match the settings, pass after pass.

One pass (``Keeper.run_once``) makes the interface match the settings: the key (generated on
first use, 0600), the interface (kernel WireGuard through pyroute2, else wireguard-go when
``userspace`` allows it), its address, listen port, peers (added, changed, removed) and host routes.
A second pass with the same settings changes nothing. The daemon owns one keeper for its life
(it remembers DNS answers and the node's own addresses) and drives it; what the last pass saw is
``Keeper.seen``, which the health check (``checks.py``) judges.

Endpoints are ``host:port``; a DNS name is re-resolved every ``resolve_interval`` and sooner when
its peer is stale. A new answer is applied at once. A peer's current endpoint is otherwise left
alone while the peer is healthy, because WireGuard itself moves it when the peer roams (its
keepalives arrive from its new address); it is reset to the configured one only when the peer is
stale. Together: one server that moves is found again by roaming, two that move at once by DNS.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable

from k3snode.config.model import Settings
from k3snode.mesh.underlay.plan import (
    Resolver,
    Result,
    Seen,
    Wanted,
    is_ip,
    resolve,
    route_targets,
    wanted_peers,
)
from k3snode.mesh.wg import health as wgh
from k3snode.mesh.wg import keys, link
from k3snode.mesh.wg import types as wg
from k3snode.mesh.wg.types import PeerUpdate, Update
from k3snode.record import record, replace
from k3snode.secret import Secret

log = logging.getLogger(__name__)

STALE_RERESOLVE = 10.0  # a stale or quiet peer's name is re-resolved at most this often
QUIET_AFTER = 5.0  # a peer that sent nothing (rx bytes unchanged) for this long is "quiet"
PASS_INTERVAL = 5.0  # the daemon makes an underlay pass at least this often


class UnderlayError(Exception):
    """The underlay cannot be set up as configured; one line naming the setting or the cause."""


@record
class _Answer:
    """A peer's endpoint as last resolved."""

    endpoint: str | None  # resolved "ip:port", None until one resolution succeeded
    at: float  # when it was resolved (monotonic)


class Keeper:
    """Keeps one node's underlay as the settings say. Keep one instance for the daemon's life:
    it remembers DNS answers and when they were fetched, and derives the public key once."""

    def __init__(
        self,
        settings: Settings,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        socket_dir: str = wg.SOCKET_DIR,
        wireguard_go: str = "wireguard-go",
        stale_threshold: float | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.clock = clock
        self.wall = wall
        self.socket_dir = socket_dir
        self.wireguard_go = wireguard_go
        self.stale_threshold = stale_threshold
        self._answers: dict[str, _Answer] = {}  # public key -> last DNS answer
        self._applied: dict[str, str] = {}  # public key -> endpoint last set by us
        self._local: frozenset[str] | None = None  # this node's own addresses at the last pass
        self._stale_reset: dict[str, float] = {}  # public key -> when a stale peer was last reset
        self._noted: dict[str, str] = {}  # public key -> the DNS failure last logged
        self._rx: dict[str, tuple[int, float]] = {}  # public key -> (rx bytes, seen since)
        self._found = False  # the interface was found or made by a pass of this instance
        self._key: tuple[tuple[int, ...] | None, Secret, str] | None = None  # (file, key, public)
        self._peers: tuple[str, list[Wanted], list[str]] | None = None  # (own key, peers, routes)
        self._literal: dict[str, bool] = {}  # endpoint host -> is an IP address (no DNS)
        self._backend_kept: wg.Backend | None = None  # the interface's backend, while it lives
        self._pubs = keys.PublicKeyCache()  # derives once per key; keeps a digest, not the key
        self.judge = wgh.PeerJudge()  # peers' staleness, remembered across passes and checks
        self.seen: Seen | None = None  # what the last pass found (for the health check)

    # -- the key ---------------------------------------------------------------------------

    def private_key(self) -> tuple[Secret, str]:
        """This node's key (created on first use) and its public key. The file is read again
        only when it changed (one ``stat`` per pass), the public key derived once per key."""
        path = self.settings.underlay.private_key_file
        kept = self._key
        ident = _file_id(path)  # before reading: a change after it is seen by the next pass
        if kept is not None and ident is not None and kept[0] == ident:
            return kept[1], kept[2]
        try:
            key, created = keys.load_or_create(path)
        except keys.BadKey as e:
            raise UnderlayError(
                f"{self.settings.where('underlay', 'private_key_file')}: {e}"
            ) from None
        except OSError as e:
            raise UnderlayError(
                f"{self.settings.where('underlay', 'private_key_file')}: cannot read or create "
                f"{path} ({e.strerror})"
            ) from None
        pub = self._pubs.public_key(key)
        if created:  # made by this call: nobody replaced it since
            ident = _file_id(path)
        self._key = (ident, key, pub)
        if created:
            log.info("underlay: created private key %s (public key %s)", path, pub)
        return key, pub

    # -- the interface ---------------------------------------------------------------------

    def _backend(self, result: Result) -> wg.Backend:
        kept = self._backend_kept
        if kept is not None and self._alive(kept):  # the pass's own read is the full check
            return kept
        if kept is not None:
            kept.close()
        self._backend_kept = b = self._find_or_create(result)
        return b

    def _alive(self, backend: wg.Backend) -> bool:
        """The kept interface still exists (two ``stat``s). A killed wireguard-go leaves its
        socket behind but takes its interface with it: look for both, so the very next pass
        makes a new one."""
        ifname = self.settings.underlay.interface
        if backend.kind == "userspace" and not os.path.exists(
            wg.userspace_socket(ifname, self.socket_dir)
        ):
            return False
        return link.exists(ifname)

    def _find_or_create(self, result: Result) -> wg.Backend:
        ul = self.settings.underlay
        ifname = ul.interface
        try:
            existing = link.existing_backend(ifname, self.socket_dir)
        except wg.WireGuardError as e:
            raise UnderlayError(str(e)) from None
        if existing is not None:
            if ul.userspace == "always" and existing.kind == "kernel":
                log.info("underlay: %s is a kernel interface although userspace = always", ifname)
            if not self._found:  # e.g. k3snode restarted: wireguard-go's own unit kept it up
                log.info("underlay: %s exists (%s): using it", ifname, existing.kind)
            self._found = True
            return existing
        if ul.userspace != "always":
            try:
                b = link.create_kernel(ifname)
                result.changes.append(f"created {ifname} (kernel WireGuard)")
                self._found = True
                return b
            except link.KernelUnsupported as e:
                if ul.userspace == "never":
                    raise UnderlayError(
                        f"{self.settings.where('underlay', 'userspace')}: {e} and userspace = "
                        "never: install the WireGuard module or allow wireguard-go (auto)"
                    ) from None
            except wg.WireGuardError as e:
                raise UnderlayError(str(e)) from None
        try:
            b = link.start_userspace(ifname, self.wireguard_go, self.socket_dir)
        except wg.WireGuardError as e:
            raise UnderlayError(f"underlay {ifname}: {e}") from None
        result.changes.append(f"created {ifname} (wireguard-go)")
        self._found = True
        return b

    # -- endpoints -------------------------------------------------------------------------

    def _endpoint(self, p: Wanted, stale: bool, result: Result) -> str | None:
        """The endpoint the settings mean now, resolving the name when due."""
        literal = self._literal.get(p.host)
        if literal is None:
            literal = self._literal[p.host] = is_ip(p.host)
        if literal:
            return wg.join_endpoint(p.host, p.port)
        now = self.clock()
        ans = self._answers.get(p.public_key)
        interval = self.settings.underlay.resolve_interval
        soon = min(STALE_RERESOLVE, interval)  # a stale peer, or a name that never resolved
        if ans is not None:
            age = now - ans.at
            if age < (soon if stale or ans.endpoint is None else interval):
                return ans.endpoint
        try:
            ip = self.resolver(p.host, p.port)
            ipaddress.ip_address(ip.split("%", 1)[0])
        except (OSError, ValueError, UnicodeError) as e:
            note = f"peer {p.name}: cannot resolve {p.host} ({e}); keeping the last endpoint"
            result.notes.append(note)
            if self._noted.get(p.public_key) != note:  # the same failure is logged once
                log.warning("underlay: %s", note)
                self._noted[p.public_key] = note
            self._answers[p.public_key] = _Answer(ans.endpoint if ans else None, now)
            return ans.endpoint if ans else None
        if self._noted.pop(p.public_key, None):
            log.info("underlay: %s resolves again", p.host)
        endpoint = wg.join_endpoint(ip, p.port)
        if ans is not None and ans.endpoint not in (None, endpoint):
            log.info("underlay: %s resolves to %s now (was %s)", p.host, endpoint, ans.endpoint)
        self._answers[p.public_key] = _Answer(endpoint, now)
        return endpoint

    # -- one pass --------------------------------------------------------------------------

    def run_once(self) -> Result:
        """Make the interface match the settings; raise UnderlayError when it cannot. Either way
        ``seen`` says what the pass found."""
        try:
            return self._run()
        except UnderlayError as e:
            self.seen = Seen(None, self.wall(), str(e))
            raise

    def keep(self) -> Result | None:
        """``run_once`` for the daemon: never raises (the daemon goes on whatever the underlay
        does); a failure is in ``seen``, for the health check. None when the pass failed."""
        try:
            return self.run_once()
        except UnderlayError:
            return None
        except Exception as e:  # never end the daemon over the underlay
            log.exception("underlay: pass failed")
            self.seen = Seen(
                None, self.wall(), f"underlay pass failed: {e.__class__.__name__}: {e}"
            )
            return None

    def _run(self) -> Result:
        ul = self.settings.underlay
        if not ul.enabled:
            raise UnderlayError(
                f"{self.settings.where('underlay', 'enabled')}: the underlay is off"
            )
        result = Result()
        key, pub = self.private_key()
        if self._peers is None or self._peers[0] != pub:  # the settings are fixed per instance
            wanted = wanted_peers(self.settings, pub)
            self._peers = (pub, wanted, route_targets(self.settings, wanted))
        _, peers, routes = self._peers
        backend = self._backend(result)
        ifname = ul.interface
        try:
            for c in link.ensure_addresses(ifname, [ul.address]):
                result.changes.append(f"address {c}")
            if link.ensure_up(ifname):
                result.changes.append(f"{ifname} up")
            local = link.local_addresses(ifname)
            moved = self._local is not None and local != self._local
            self._local = local
            at = self.wall()
            dev = backend.read()
            update = self.plan(dev, pub, key, peers, result, moved)
            backend.configure(update)
            for c in link.ensure_host_routes(ifname, routes):
                result.changes.append(f"route {c}")
            if update:  # what was read is no longer what is there: one more read, rarely
                at, dev = self.wall(), backend.read()
        except wg.WireGuardError as e:
            kept, self._backend_kept = self._backend_kept, None  # look afresh next time
            if kept is not None:
                kept.close()
            raise UnderlayError(f"underlay: {e}") from None
        self.seen = Seen(dev, at)
        for c in result.changes:
            log.info("underlay: %s", c)
        return result

    def plan(
        self,
        dev: wg.Device,
        pub: str,
        key: Secret,
        peers: list[Wanted],
        result: Result,
        moved: bool = False,
    ) -> Update:
        """The update that makes ``dev`` match ``peers``. ``moved``: this node's own addresses
        changed since the last pass, so every endpoint is set again (wireguard-go keeps sending
        from a vanished source address — ENETUNREACH — until its endpoint is set anew)."""
        ul = self.settings.underlay
        now = self.wall()
        private = None
        if dev.public_key != pub:
            private = key
            result.changes.append(f"private key set (public key {pub})")
        port = None
        if dev.listen_port != ul.listen_port:
            port = ul.listen_port
            result.changes.append(f"listen port {dev.listen_port} -> {port}")
        updates = []
        wanted_keys = {p.public_key for p in peers}
        current = {p.public_key: p for p in dev.peers}  # one lookup per wanted peer: O(n) pass
        for have in dev.peers:
            if have.public_key not in wanted_keys:
                updates.append(PeerUpdate(have.public_key, remove=True))
                result.changes.append(f"peer {have.public_key[:8]}… removed")
                self._answers.pop(have.public_key, None)
                self._applied.pop(have.public_key, None)
        for p in peers:
            have = current.get(p.public_key)
            stale = have is not None and self.judge.is_stale(
                dev.ifname, _with_keepalive(have, p.keepalive), now, self.stale_threshold
            )
            quiet = have is not None and self._quiet(p.public_key, have.rx_bytes)
            endpoint = self._endpoint(p, stale or quiet or have is None, result)
            if have is None:
                updates.append(PeerUpdate(p.public_key, endpoint=endpoint, keepalive=p.keepalive,
                                          allowed_ips=p.allowed_ips))  # fmt: skip
                result.changes.append(f"peer {p.name} added ({endpoint or 'no endpoint yet'})")
                if endpoint:
                    self._applied[p.public_key] = endpoint
                continue
            set_ep = None
            if endpoint is not None and have.endpoint != endpoint:
                last = self._applied.get(p.public_key)
                if have.endpoint is None or stale or (last is not None and last != endpoint):
                    set_ep = endpoint
                    why = (
                        "stale" if stale else "no endpoint" if have.endpoint is None else "changed"
                    )
                    result.changes.append(
                        f"peer {p.name} endpoint {have.endpoint} -> {endpoint} ({why})"
                    )
            if set_ep is None and have.endpoint is not None:
                since = self.clock() - self._stale_reset.get(p.public_key, float("-inf"))
                if moved or (stale and since >= STALE_RERESOLVE):
                    set_ep = have.endpoint  # the same endpoint, set anew: a fresh source address
                    why = "own address changed" if moved else "stale"
                    result.changes.append(f"peer {p.name} endpoint {set_ep} set again ({why})")
            if stale and set_ep is not None:
                self._stale_reset[p.public_key] = self.clock()
            if endpoint is not None and (set_ep == endpoint or p.public_key not in self._applied):
                self._applied[p.public_key] = endpoint
            ka = p.keepalive if have.keepalive != p.keepalive else None
            if ka is not None:
                result.changes.append(f"peer {p.name} keepalive {have.keepalive} -> {ka}")
            ips = None
            if set(have.allowed_ips) != set(p.allowed_ips):
                ips = p.allowed_ips
                result.changes.append(f"peer {p.name} allowed IPs -> {', '.join(ips)}")
            if set_ep or ka is not None or ips is not None:
                updates.append(
                    PeerUpdate(p.public_key, endpoint=set_ep, keepalive=ka, allowed_ips=ips)
                )
        return Update(private_key=private, listen_port=port, peers=tuple(updates))

    def _quiet(self, public_key: str, rx_bytes: int) -> bool:
        """The peer sent nothing since ``QUIET_AFTER`` seconds (its rx bytes did not grow between
        passes). With persistent keepalive or etcd's heartbeats a reachable peer is never quiet
        that long; a quiet one may have moved, so its name is re-resolved every
        ``STALE_RERESOLVE`` s rather than every ``resolve_interval`` — long before it counts as
        stale (no handshake for 120 s + 3 keepalives). This is what brings two servers that
        moved at once back within seconds of DNS having their new addresses."""
        now = self.clock()
        last = self._rx.get(public_key)
        if last is None or last[0] != rx_bytes:
            self._rx[public_key] = (rx_bytes, now)
            return False
        return now - last[1] >= QUIET_AFTER


def _file_id(path: str) -> tuple[int, ...] | None:
    """What tells a changed key file (content, owner or mode: ctime), or None when it cannot be
    read; a mode open to others is not kept, so the next pass narrows it again."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mode & 0o077:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _with_keepalive(peer: wg.Peer, keepalive: int) -> wg.Peer:
    return peer if peer.keepalive else replace(peer, keepalive=keepalive)
