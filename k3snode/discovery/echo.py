"""Opt-in HTTPS echo services ("what is my address?"): the last resort, off by default.

Each request is forced to one address family at the socket level (the service's name is resolved
for that family only, like ``curl -4``/``-6``), because "ipv4." host names have been seen answering
over IPv6. An answer counts only when it parses, is of the requested family and is public; an
address is taken only when at least two services agree on it. No proxies are used (``http.client``
connects directly), certificates are verified, answers are capped at 1 KiB.

An echo service sees the *egress* address: behind a shared NAT it is not the node's own. That is
why ``discover`` never asks one when the cloud's metadata said the node has no public address.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from k3snode import addresses

TIMEOUT = 3.0
MAX_BODY = 1024
QUORUM = 2
_AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


@dataclass(frozen=True)
class EchoResult:
    ipv4: str | None = None
    ipv6: str | None = None
    notes: tuple[str, ...] = ()

    def get(self, fam: str) -> str | None:
        return self.ipv4 if fam == "ipv4" else self.ipv6


class _FamilyConnection(http.client.HTTPSConnection):
    """HTTPS to the host's addresses of one family only."""

    def __init__(self, host: str, port: int, family: int, timeout: float, context) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._family = family

    def connect(self) -> None:
        infos = _resolve(self.host, self.port, self._family, self.timeout)
        last: OSError = OSError(f"no {self._family.name} address")
        for fam, type_, proto, _, addr in infos:
            sock = socket.socket(fam, type_, proto)
            sock.settimeout(self.timeout)
            try:
                sock.connect(addr)
            except OSError as e:
                sock.close()
                last = e
                continue
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
            return
        raise last


def _resolve(host: str, port: int, family: int, timeout: float) -> list:
    """getaddrinfo bounded by ``timeout`` (a stuck resolver must not stall discovery)."""
    import threading

    box: list = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except OSError as e:
            box.append(e)

    t = threading.Thread(target=work, name="k3snode-echo-dns", daemon=True)
    t.start()
    t.join(timeout)
    if not box:
        raise socket.timeout(f"resolving {host} timed out")
    if isinstance(box[0], OSError):
        raise box[0]
    return box[0]


def ask(url: str, fam: str, timeout: float = TIMEOUT, context: ssl.SSLContext | None = None) -> str:
    """One service's answer for one family: the address text, or raises OSError/ValueError."""
    u = urlsplit(url)
    if u.scheme != "https" or not u.hostname:
        raise ValueError("not an https:// URL")
    ctx = context or ssl.create_default_context()
    conn = _FamilyConnection(u.hostname, u.port or 443, _AF[fam], timeout, ctx)
    try:
        conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""),
                     headers={"User-Agent": "k3snode", "Accept": "text/plain"})  # fmt: skip
        resp = conn.getresponse()
        body = resp.read(MAX_BODY + 1)
    except http.client.HTTPException as e:
        raise ValueError(f"bad HTTP answer ({type(e).__name__})") from None
    finally:
        conn.close()
    if resp.status != 200:
        raise ValueError(f"HTTP {resp.status}")
    if len(body) > MAX_BODY:
        raise ValueError("answer too long")
    return body.decode("utf-8", "replace").strip()


def discover(
    services: tuple[str, ...] | list[str],
    families: tuple[str, ...] | list[str],
    deadline: float,
    context: ssl.SSLContext | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> EchoResult:
    """Ask services in turn, per family, until ``QUORUM`` agree or the deadline passes."""
    found: dict[str, str] = {}
    notes: list[str] = []
    for fam in families:
        votes: Counter[str] = Counter()
        for url in services:
            left = deadline - clock()
            if left <= 0.05:
                notes.append(f"echo {fam}: discovery timeout before {url}")
                break
            try:
                text = ask(url, fam, min(TIMEOUT, left), context)
            except (OSError, ValueError) as e:
                notes.append(f"echo {url} ({fam}): {_why(e)}")
                continue
            judged = addresses.judge(text, want_family=4 if fam == "ipv4" else 6)
            if not judged.ok:
                notes.append(f"echo {url} ({fam}): {judged.address or text[:40]!r} rejected: "
                             f"{judged.problem}")  # fmt: skip
                continue
            votes[judged.address or ""] += 1
            if votes[judged.address or ""] >= QUORUM:
                found[fam] = judged.address or ""
                break
        else:
            if votes:
                shown = ", ".join(f"{a} x{n}" for a, n in votes.most_common())
                notes.append(f"echo {fam}: fewer than {QUORUM} services agree ({shown})")
            else:
                notes.append(f"echo {fam}: no service answered")
    return EchoResult(found.get("ipv4"), found.get("ipv6"), tuple(notes))


def _why(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return "name does not resolve for this family"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
