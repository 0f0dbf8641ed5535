"""Opt-in HTTPS echo services ("what is my address?"): the last resort, off by default.

Each request is forced to one address family at the socket level (the service's name is resolved
for that family only, like ``curl -4``/``-6``), because "ipv4." host names have been seen answering
over IPv6. An answer counts only when it parses, is of the requested family and is public; an
address is taken only when at least two services agree on it. Requests go through the one HTTP
client (``http.py``): no proxies, certificates verified, the whole answer within the time left,
capped at 1 KiB.

An echo service sees the *egress* address: behind a shared NAT it is not the node's own. That is
why ``discover`` never asks one when the cloud's metadata said the node has no public address.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Callable

from k3snode import addresses
from k3snode.discovery.http import fetch
from k3snode.record import record

TIMEOUT = 3.0
MAX_BODY = 1024
QUORUM = 2
_AF = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


@record
class EchoResult:
    """What the echo services agreed on, per family, and why not where they did not."""

    ipv4: str | None = None
    ipv6: str | None = None
    notes: tuple[str, ...] = ()

    def get(self, fam: str) -> str | None:
        return self.ipv4 if fam == "ipv4" else self.ipv6


def ask(url: str, fam: str, timeout: float = TIMEOUT, context=None) -> str:
    """One service's answer for one family: the address text, or raises OSError/ValueError.
    ``context``: an ``ssl.SSLContext`` (default: the system's trust store)."""
    if not url.startswith("https://"):
        raise ValueError("not an https:// URL")
    resp = fetch(url, timeout, family=_AF[fam], max_body=MAX_BODY, tls=context,
                      headers={"Accept": "text/plain"})  # fmt: skip
    if resp.status != 200:
        raise ValueError(f"HTTP {resp.status}")
    return resp.text.strip()


def discover(
    services: tuple[str, ...] | list[str],
    families: tuple[str, ...] | list[str],
    deadline: float,
    context=None,
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
    if type(e).__module__ == "ssl":  # ssl.SSLError & co. (ssl is imported only for HTTPS)
        return f"TLS: {getattr(e, 'reason', '') or e}"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return "name does not resolve for this family"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
