"""The ``tailscale`` CLI, read: run it bounded, parse ``tailscale status --json``, and the node's
Tailscale addresses for render, detect and a pass (``node_addresses``; it changes nothing).

Every line of Tailscale's output k3snode repeats goes through ``scrub`` first (the auth key and
anything shaped like ``tskey-…`` removed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from operator import attrgetter
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import TYPE_CHECKING, Any, Callable

from k3snode.discovery.result import Discovery
from k3snode.mesh.tailscale import gotime
from k3snode.mesh.tailscale.types import Peer, Status, TailscaleError
from k3snode.secret import Secret

if TYPE_CHECKING:
    from k3snode.config.model import Settings

INTERFACE = "tailscale0"
STATUS_TIMEOUT = 15.0  # one `tailscale status --json` call
_TSKEY = re.compile(r"tskey-[A-Za-z0-9-]+")


# ---------------------------------------------------------------------------------------------
# Parsing


def _own_ips(value: Any) -> tuple[str, ...]:
    """This node's valid addresses from a TailscaleIPs list, in canonical text form (they become
    K3s's node-external-ip). ``inet_pton``/``inet_ntop``: strict (no leading zeros, no zone, no
    prefix) and a twentieth of ``ipaddress``'s cost, the fixed part of every parse."""
    if not isinstance(value, list):
        return ()
    out = []
    for ip in value:
        fam = AF_INET6 if type(ip) is str and ":" in ip else AF_INET
        try:
            out.append(inet_ntop(fam, inet_pton(fam, ip)))
        except (OSError, TypeError, ValueError):
            continue
    return tuple(out)


def _peers(raw: dict[str, Any], when: Callable[[Any], float | None]) -> list[Peer]:
    """The peers of a status, unsorted. One loop with everything it calls bound to locals:
    thousands of peers per status, each lookup counts."""
    zero = gotime.ZERO
    out = []
    for p in raw.values():
        if type(p) is not dict:
            continue
        get = p.get
        endpoint = get("CurAddr") or (f"derp:{p['Relay']}" if get("Relay") else None)
        seen, shook = get("LastSeen"), get("LastHandshake")
        rx, tx = get("RxBytes"), get("TxBytes")
        peer = Peer(
            public_key=str(get("PublicKey") or ""),
            hostname=str(get("HostName") or ""),
            dns_name=str(get("DNSName") or ""),
            online=get("Online") is True,
            last_seen=None if seen == zero else when(seen),
            last_handshake=None if shook == zero else when(shook),
            endpoint=str(endpoint) if endpoint else None,
            rx_bytes=rx if type(rx) is int else 0,
            tx_bytes=tx if type(tx) is int else 0,
        )
        out.append(peer)
    return out


def parse_status(data: Any) -> Status:
    """``tailscale status --json`` → Status. Raises ValueError on something that is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("BackendState"), str):
        raise ValueError("not a tailscale status object (no BackendState)")
    me = data.get("Self") if isinstance(data.get("Self"), dict) else {}
    peers = data.get("Peer") if isinstance(data.get("Peer"), dict) else {}
    when = gotime.reader()
    return Status(
        backend_state=data["BackendState"],
        addresses=_own_ips(data.get("TailscaleIPs")) or _own_ips(me.get("TailscaleIPs")),
        hostname=str(me.get("HostName") or ""),
        online=me.get("Online") is True,
        self_expired=me.get("Expired") is True,
        key_expiry=when(me.get("KeyExpiry")),
        health=tuple(str(h) for h in data.get("Health") or [] if isinstance(h, str)),
        peers=tuple(sorted(_peers(peers, when), key=attrgetter("hostname", "public_key"))),
        auth_url=str(data.get("AuthURL") or ""),
    )


# ---------------------------------------------------------------------------------------------
# Running the CLI


def scrub(text: str, secret: Secret | None = None) -> str:
    """Tailscale's output with the auth key and anything shaped like ``tskey-…`` removed."""
    if secret:
        text = text.replace(secret.reveal(), "********")
    return _TSKEY.sub("tskey-********", text)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_cli(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``tailscale ARGS`` bounded; OSError / TimeoutExpired propagate."""
    return subprocess.run(
        ["tailscale", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def installed() -> bool:
    return shutil.which("tailscale") is not None


def read_status(timeout: float = STATUS_TIMEOUT, secret: Secret | None = None) -> Status:
    """``tailscale status --json``; TailscaleError(kind "daemon") when tailscaled does not answer."""
    try:
        out = run_cli(["status", "--json"], timeout)
    except FileNotFoundError:
        raise TailscaleError("tailscale is not installed", "not-installed") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TailscaleError(f"tailscale status --json failed: {e}", "daemon") from None
    if out.returncode != 0:
        msg = scrub(last_line(out.stderr) or last_line(out.stdout), secret)
        raise TailscaleError(
            f"tailscaled does not answer: {msg or f'exit status {out.returncode}'}", "daemon"
        )
    try:
        return parse_status(json.loads(out.stdout))
    except ValueError as e:
        raise TailscaleError(f"tailscale status --json gave an unreadable answer: {e}") from None


def read_key(settings: Settings) -> Secret | None:
    """The auth key — only to scrub it from Tailscale's output; it is never passed anywhere."""
    try:
        with open(settings.tailscale.auth_key_file, encoding="utf-8") as f:
            value = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Secret(value) if value else None


# ---------------------------------------------------------------------------------------------
# Read-only: the addresses for render / detect / a pass


def node_addresses(settings: Settings) -> Discovery:
    """The node's Tailscale IPv4/IPv6 (static ``external_ips`` win per family); changes nothing."""
    ds = settings.discovery
    found = {"ipv4": ds.static_ipv4, "ipv6": ds.static_ipv6}
    sources = {fam: "static" for fam, a in found.items() if a}
    if all(found.values()):
        return Discovery(public_ipv4=found["ipv4"], public_ipv6=found["ipv6"], sources=sources)

    def partial(error: str) -> Discovery:
        return Discovery(
            public_ipv4=found["ipv4"], public_ipv6=found["ipv6"], sources=sources, error=error
        )

    if not installed():
        return partial("tailscale is not installed")
    try:
        st = read_status(secret=read_key(settings))
    except TailscaleError as e:
        return partial(str(e))
    if st.backend_state != "Running":
        return partial(f"tailscale is not running (BackendState {st.backend_state!r})")
    for fam, ip in (("ipv4", st.ipv4), ("ipv6", st.ipv6)):
        if found[fam] is None and ip:
            found[fam] = ip
            sources[fam] = "tailscale"
    return Discovery(public_ipv4=found["ipv4"], public_ipv6=found["ipv6"], sources=sources)
