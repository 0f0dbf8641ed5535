"""Tailscale's health for the daemon (``observe``) and its preflight for ``k3snode check``.

``observe`` reads ``tailscale status --json`` only: backend state, this node's addresses, every peer
online/offline with last seen (control reports ``LastSeen`` while a peer is offline), and the two
key problems users hit late — this node's key expired (``Self.Expired`` / ``Self.KeyExpiry``,
tailscale #6786) and an auth key the control server refused ("invalid key: …" in ``Health``, k3s
#10729) — each named as such.
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING, Callable

from k3snode.health.checks import Finding, Observation, PeerHealth
from k3snode.k3s.vpn_auth import VPNAuthError, vpn_auth_line
from k3snode.mesh.tailscale.status import INTERFACE, installed, read_key, read_status, scrub
from k3snode.mesh.tailscale.types import Status, TailscaleError
from k3snode.mesh.tailscale.up_args import identity_args
from k3snode.mesh.tailscale.version import too_old, version

if TYPE_CHECKING:
    from k3snode.config.model import Settings
    from k3snode.secret import Secret

CHECK = "tailscale"
EXPIRY_WARNING = 7 * 86400  # say so when this node's key expires within a week


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _peers(st: Status) -> tuple[PeerHealth, ...]:
    return tuple(
        PeerHealth(
            interface=INTERFACE,
            public_key=p.public_key,
            endpoint=p.endpoint,
            last_handshake=p.last_handshake,
            rx_bytes=p.rx_bytes,
            tx_bytes=p.tx_bytes,
            online=p.online,
            stale=not p.online,
            name=p.dns_name.rstrip(".") or p.hostname,
            last_seen=p.last_seen,
        )
        for p in st.peers
    )


def judge(st: Status, now: float, key_file: str = "", secret: Secret | None = None) -> Observation:
    """One Observation from a parsed status (pure: the clock is given)."""
    peers = _peers(st)
    online = sum(1 for p in st.peers if p.online)
    facts = {
        "backend_state": st.backend_state,
        "addresses": ",".join(st.addresses),
        "hostname": st.hostname,
        "peers_online": str(online),
        "peers_offline": str(len(st.peers) - online),
    }
    if st.key_expiry is not None:
        facts["key_expiry"] = _when(st.key_expiry)
    expired = st.self_expired or (st.key_expiry is not None and st.key_expiry <= now)
    if expired:
        when = f" at {_when(st.key_expiry)}" if st.key_expiry is not None else ""
        detail = (
            f"this node's Tailscale key expired{when}; re-authenticate it "
            "(tailscale up --force-reauth with a new auth key) and disable key expiry for "
            "cluster nodes"
        )
        return Observation(CHECK, False, detail, peers, {**facts, "problem": "key-expired"})
    if st.login_error:
        msg = scrub(st.login_error, secret)
        where = f" in {key_file}" if key_file else ""
        detail = f"Tailscale rejected the auth key{where} (expired, revoked or already used): {msg}"
        return Observation(CHECK, False, detail, peers, {**facts, "problem": "auth-key-rejected"})
    if st.backend_state != "Running":
        hint = {
            "NeedsLogin": "logged out; k3snode runs tailscale up on its next pass",
            "NeedsMachineAuth": "waiting for an admin to approve this machine",
            "Stopped": "stopped (tailscale down); k3snode runs tailscale up on its next pass",
        }.get(st.backend_state, "not running")
        detail = f"BackendState {st.backend_state}: {hint}"
        return Observation(CHECK, False, detail, peers, {**facts, "problem": "not-running"})
    if not st.addresses:
        detail = "Running but without a Tailscale address"
        return Observation(CHECK, False, detail, peers, {**facts, "problem": "no-address"})
    detail = f"Running as {st.hostname or '?'} ({', '.join(st.addresses)}); "
    detail += f"{online}/{len(st.peers)} peers online"
    offline = sorted(
        p.name + (f" last seen {_when(p.last_seen)}" if p.last_seen else "")
        for p in peers
        if not p.online
    )
    if offline:
        detail += f" (offline: {', '.join(offline)})"
    if st.key_expiry is not None and st.key_expiry - now < EXPIRY_WARNING:
        detail += f"; node key expires {_when(st.key_expiry)}"
    return Observation(CHECK, True, detail, peers, facts)


def observe(settings: Settings, now: Callable[[], float] = time.time) -> list[Observation]:
    """The daemon's Tailscale observer (``registry.observers()``); nothing unless mesh = tailscale."""
    if settings.mesh != "tailscale":
        return []
    if not installed():
        return [Observation(CHECK, False, "tailscale is not installed")]
    key = read_key(settings)
    try:
        st = read_status(secret=key)
    except TailscaleError as e:
        return [Observation(CHECK, False, str(e))]
    return [judge(st, now(), settings.tailscale.auth_key_file, key)]


def preflight(settings: Settings) -> list[Finding]:
    """``k3snode check``: is Tailscale there, is the auth key file right, will K3s parse it?"""
    if settings.mesh != "tailscale":
        return []
    ts = settings.tailscale
    out = []
    if installed():
        v, shown = version()
        problem = too_old(v, shown) if v else None
        if problem:
            out.append(Finding("error", CHECK, problem))
        else:
            out.append(
                Finding("ok", CHECK, f"tailscale {shown or '(version unknown)'} is installed")
            )
    elif ts.install:
        msg = f"tailscale is not installed; apply will install it from {ts.install_url}"
        out.append(Finding("warning", CHECK, msg))
    else:
        msg = "tailscale is not installed and [tailscale] install = false"
        out.append(Finding("error", CHECK, msg))
    path = ts.auth_key_file
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return [*out, Finding("error", CHECK, f"auth key file {path} does not exist")]
    except OSError as e:
        return [*out, Finding("error", CHECK, f"auth key file {path}: {e.strerror}")]
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        msg = f"auth key file {path} is mode {mode:04o}; make it 0600 (chmod 600 {path})"
        out.append(Finding("warning", CHECK, msg))
    else:
        out.append(Finding("ok", CHECK, f"auth key file {path} is mode {mode:04o}"))
    key = read_key(settings)
    if not key:
        return [*out, Finding("error", CHECK, f"auth key file {path} is empty or unreadable")]
    try:
        vpn_auth_line(key.reveal(), ts.control_server_url, identity_args(settings))
    except VPNAuthError as e:
        out.append(Finding("error", CHECK, f"{settings.where('tailscale', 'auth_key_file')}: {e}"))
    else:
        out.append(
            Finding("ok", CHECK, "auth key and control server URL fit K3s's vpn-auth format")
        )
    if installed():
        try:
            status = read_status(secret=key)
        except TailscaleError as e:
            out.append(Finding("warning", CHECK, f"{e}; apply starts tailscaled"))
        else:
            obs = judge(status, time.time(), path, key)
            problem = obs.facts.get("problem")
            level = "ok" if obs.ok else ("warning" if problem == "not-running" else "error")
            out.append(Finding(level, CHECK, obs.detail))
    return out
