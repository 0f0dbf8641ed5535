"""K3s's Tailscale integration: bring Tailscale up before K3s and read the node's Tailscale addresses.

``ensure_up`` is the one bring-up step (``apply`` and the daemon call it through
``reconcile.mesh_up`` before discovery); what it does in each Tailscale state, and why, is in
``tailscale_bringup``. This module reads ``tailscale status --json`` and runs the CLI.

The auth key never leaves its file: ``tailscale`` reads it (``file:`` prefix, Tailscale's
``cmd/tailscale/cli/up.go``), and every line of Tailscale's output k3snode repeats is scrubbed of the
key and of anything shaped like ``tskey-…`` first.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable

from k3snode import addresses
from k3snode.discovery.result import Discovery
from k3snode.secret import Secret

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger("k3snode")

INTERFACE = "tailscale0"
STATUS_TIMEOUT = 15.0  # one `tailscale status --json` call
POLL = 0.5  # seconds between status polls while waiting
_TSKEY = re.compile(r"tskey-[A-Za-z0-9-]+")
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class TailscaleError(Exception):
    """Tailscale could not be brought up; the message is one line a user can act on.

    ``kind``: not-installed, too-old, install-failed, daemon, bad-key, needs-login, machine-auth, timeout,
    no-address, failed.
    """

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Peer:
    """One peer from ``tailscale status --json`` (``ipnstate.PeerStatus``)."""

    public_key: str
    hostname: str
    dns_name: str
    addresses: tuple[str, ...]
    online: bool
    last_seen: float | None  # unix time; control only reports it while the peer is offline
    last_handshake: float | None
    endpoint: str | None  # CurAddr (direct) or "derp:<region>" (relayed)
    rx_bytes: int
    tx_bytes: int
    expired: bool


@dataclass(frozen=True)
class Status:
    """What ``tailscale status --json`` says (``ipnstate.Status``), reduced to what k3snode uses."""

    backend_state: str
    addresses: tuple[str, ...]
    hostname: str
    online: bool
    self_expired: bool
    key_expiry: float | None
    health: tuple[str, ...]
    peers: tuple[Peer, ...]
    auth_url: str = ""

    @property
    def ipv4(self) -> str | None:
        return next((a for a in self.addresses if addresses.family(a) == 4), None)

    @property
    def ipv6(self) -> str | None:
        return next((a for a in self.addresses if addresses.family(a) == 6), None)

    @property
    def login_error(self) -> str | None:
        """Tailscale's "You are logged out. The last login error was: …" health message."""
        return next((h for h in self.health if "login error" in h or "invalid key" in h), None)


@dataclass(frozen=True)
class TailscaleState:
    """The outcome of ``ensure_up``: what k3snode found or did, and the node's addresses."""

    backend_state: str
    ipv4: str | None
    ipv6: str | None
    hostname: str
    installed: bool  # k3snode ran the install script in this call
    daemon_started: bool  # k3snode started tailscaled in this call
    brought_up: bool  # k3snode ran `tailscale up` in this call

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, self.ipv6) if a]


# ---------------------------------------------------------------------------------------------
# Parsing


_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil:
    integer arithmetic, a fraction of datetime's cost for thousands of peers)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_time(value: Any) -> float | None:
    """Go's RFC 3339 ``time.Time`` JSON (nanoseconds, ``Z`` or offset) → unix time; zero → None."""
    if not isinstance(value, str) or not value or value == _GO_ZERO_TIME:
        return None
    m = _TIME.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if y <= 1 or not (1 <= mo <= 12 and 1 <= d <= _month_days(y, mo)) or h > 23 or mi > 59:
        return None
    if s > 59:
        return None
    t = float(_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s)
    frac = m.group(7)
    if frac:
        t += int(frac) / 10 ** len(frac)
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


_ADDRESS_SHAPE = re.compile(r"[0-9A-Fa-f.:]{2,45}")


def _ips(value: Any, fast: bool = False) -> tuple[str, ...]:
    """Valid addresses of a TailscaleIPs list, normalised; ``fast`` for peers (display only:
    strings shaped like an address, lower-cased, without parsing each one)."""
    if not isinstance(value, list):
        return ()
    if fast:
        return tuple(ip.lower() for ip in value if type(ip) is str and _ADDRESS_SHAPE.fullmatch(ip))
    out = []
    for ip in value:
        try:
            out.append(addresses.normalise(str(ip)))
        except (ValueError, TypeError):
            continue
    return tuple(out)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _peer(p: dict[str, Any], when: Callable[[Any], float | None] = parse_time) -> Peer:
    get = p.get  # thousands of peers per status: every lookup counts
    endpoint = get("CurAddr") or (f"derp:{p['Relay']}" if get("Relay") else None)
    rx, tx = get("RxBytes"), get("TxBytes")
    peer = object.__new__(Peer)
    # Every field, set directly: the frozen dataclass's __init__ sets each one through
    # object.__setattr__, the slowest part of a 5000-peer parse (tests compare with Peer(...)).
    peer.__dict__.update(
        public_key=str(get("PublicKey") or ""),
        hostname=str(get("HostName") or ""),
        dns_name=str(get("DNSName") or ""),
        addresses=_ips(get("TailscaleIPs"), fast=True),
        online=get("Online") is True,
        last_seen=when(get("LastSeen")),
        last_handshake=when(get("LastHandshake")),
        endpoint=str(endpoint) if endpoint else None,
        rx_bytes=rx if type(rx) is int else 0,
        tx_bytes=tx if type(tx) is int else 0,
        expired=get("Expired") is True,
    )
    return peer


def _minute(text: str) -> float | None:
    """``YYYY-MM-DDTHH:MM`` (UTC) → unix time, by slicing; None when it is not a valid one."""
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16]
    if (
        len(text) != 16
        or text[4] != "-"
        or text[7] != "-"
        or text[10] != "T"
        or text[13] != ":"
        or not (digits.isascii() and digits.isdigit())
    ):
        return None
    y, mo, d, h, mi = (
        int(text[0:4]),
        int(text[5:7]),
        int(text[8:10]),
        int(text[11:13]),
        int(text[14:16]),
    )
    if y <= 1 or not (1 <= mo <= 12 and 1 <= d <= _month_days(y, mo)) or h > 23 or mi > 59:
        return None
    return float(_days(y, mo, d) * 86400 + h * 3600 + mi * 60)


def _time_reader() -> Callable[[Any], float | None]:
    """``parse_time`` for thousands of peers: the common ``…THH:MM:SS[.frac]Z`` form read by
    slicing, each date-hour-minute prefix converted once; anything else goes to ``parse_time``."""
    minutes: dict[str, float | None] = {}

    def read(value: Any) -> float | None:
        if value == _GO_ZERO_TIME:
            return None
        if (
            not isinstance(value, str)
            or len(value) < 20
            or len(value) == 21  # "…:SS.Z": no fraction after the dot
            or value[-1] != "Z"
            or value[16] != ":"
            or (len(value) > 20 and value[19] != ".")
        ):
            return parse_time(value)
        seconds = value[17:-1]
        if not (seconds.isascii() and seconds.replace(".", "", 1).isdigit()):
            return parse_time(value)
        minute = value[:16]
        base = minutes.get(minute, -1.0)
        if base == -1.0:
            base = minutes[minute] = _minute(minute)
        sec = float(seconds)
        return None if base is None or sec >= 60 else base + sec

    return read


def parse_status(data: Any) -> Status:
    """``tailscale status --json`` → Status. Raises ValueError on something that is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("BackendState"), str):
        raise ValueError("not a tailscale status object (no BackendState)")
    me = data.get("Self") if isinstance(data.get("Self"), dict) else {}
    peers = data.get("Peer") if isinstance(data.get("Peer"), dict) else {}
    ips = _ips(data.get("TailscaleIPs")) or _ips(me.get("TailscaleIPs"))
    when = _time_reader()
    return Status(
        backend_state=data["BackendState"],
        addresses=ips,
        hostname=str(me.get("HostName") or ""),
        online=me.get("Online") is True,
        self_expired=me.get("Expired") is True,
        key_expiry=parse_time(me.get("KeyExpiry")),
        health=tuple(str(h) for h in data.get("Health") or [] if isinstance(h, str)),
        peers=tuple(
            sorted(
                (_peer(p, when) for p in peers.values() if isinstance(p, dict)),
                key=attrgetter("hostname", "public_key"),
            )
        ),
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


# ---------------------------------------------------------------------------------------------
# Bring-up (``tailscale_bringup``)


def read_key(settings: Settings) -> Secret | None:
    """The auth key — only to scrub it from Tailscale's output; it is never passed anywhere."""
    try:
        with open(settings.tailscale.auth_key_file, encoding="utf-8") as f:
            value = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Secret(value) if value else None


def ensure_up(
    settings: Settings,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TailscaleState:
    """Bring Tailscale to Running before K3s starts (``tailscale_bringup.ensure_up``)."""
    from k3snode.mesh import tailscale_bringup

    return tailscale_bringup.ensure_up(settings, monotonic, sleep)


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
