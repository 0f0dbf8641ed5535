"""The one HTTP client: metadata services, GCP's long-poll, echo services, the Tailscale install
script. Direct, short, bounded; the bytes on the wire are ``wire.py``'s (stdlib sockets, for the
measured reasons given there: ``http.client`` costs 15–25 ms of import and has no whole-answer
deadline).

- **No proxies, ever.** The client connects to the address it resolved itself; ``HTTP_PROXY`` &
  co. are never read (a proxy cannot reach link-local addresses and made other tools hang for
  minutes).
- **Short timeouts**: ``connect_timeout`` for the TCP handshake, ``read_timeout`` for the whole
  answer (TLS handshake, status line, headers and body) on HTTP and HTTPS alike, so a server that
  dribbles one byte a second is cut off too.
- **Bounded retries** with exponential backoff, only on connection errors, 5xx and 429 (a booting
  network, GCE maintenance, Azure's rate limit); never on timeouts, which would just wait again.
  A provider may name statuses to retry until the deadline instead (Azure's 410 while its IMDS
  is not ready yet); a ``Retry-After`` of a 429/410/503 is honoured within the deadline.
- **Host names resolved inside the deadline**: a name is resolved in a helper thread that is
  waited for at most until the deadline (a stuck resolver cannot make discovery wait 5 s ×
  attempts).
- **A body cap** (``max_body``): a metadata leaf is a few bytes, a JSON document a few KiB.
- **One deadline** for the whole discovery, shared by every request of a ``Client``.
- ``override`` (``[discovery] metadata_endpoint``) replaces the scheme, host and port of the
  provider's base URL, for tests and odd networks; the path stays the provider's.
- ``race`` picks, between a service's IPv4 and IPv6 addresses, the first that accepts a TCP
  connection — the IPv4 one at once, the IPv6 one after a short stagger or as soon as the IPv4 one
  failed (RFC 6555/8305 "happy eyeballs", as cloud-init's ``url_helper.dual_stack``).
- ``fetch(url, …)`` is the one-shot form (echo services, the install script): one address family
  if asked (``curl -4``/``-6``), certificates verified, redirects followed only when asked and
  only to HTTPS.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import threading
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

from k3snode.bounded import one_line
from k3snode.discovery.errors import MetadataError, MetadataTimeout, MetadataUnreachable
from k3snode.discovery.wire import (
    BadRequest,
    ConnectFailed,
    Deadline,
    ProtocolError,
    Response,
    Target,
    TooLarge,
    exchange,
)
from k3snode.record import field, record

__all__ = ["Client", "Response", "TooLarge", "fetch", "race", "resolve"]

MAX_BODY = 256 * 1024
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
ATTEMPTS = 4
BACKOFF = 0.1  # first pause; doubles, at most BACKOFF_MAX
BACKOFF_MAX = 1.0
REDIRECTS = 5

_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)


def default_tls():
    """The system's trust store, verified host names. ``ssl`` is imported here, not at the top:
    it costs ≈ 10 ms of import, and the metadata path (plain HTTP) never needs it."""
    import ssl

    return ssl.create_default_context()


@record(frozen=False)
class Client:
    """Requests against one provider's metadata service until ``deadline`` (monotonic seconds)."""

    base: str  # the provider's default, e.g. http://169.254.169.254
    deadline: float
    override: str = ""
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    attempts: int = ATTEMPTS
    max_body: int = MAX_BODY
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    patient: frozenset = frozenset()  # statuses retried until the deadline (Azure: 410)
    tls: object = None  # an ssl.SSLContext for an https:// base; None: the system's trust store
    memo: dict = field(default_factory=dict)  # kept by the caller between discoveries (tokens)
    brief: bool = False  # a repeated discovery: only what a pass needs (no private address)
    requests: int = 0  # how many were sent (diagnostics)

    def __post_init__(self) -> None:
        u = urlsplit(self.override or self.base)
        self.scheme = u.scheme or "http"
        self.host = u.hostname or ""
        self.port = u.port or (443 if self.scheme == "https" else 80)
        self._address = self.host if _is_literal(self.host) else ""

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")

    def left(self) -> float:
        return self.deadline - self.clock()

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        retry: bool = True,
        read_timeout: float | None = None,
        body: bytes = b"",
    ) -> Response:
        """Send one request (retrying connection errors, 5xx and 429 when ``retry``).

        Returns the response of any status the caller must interpret (200, 404, 401, 403…);
        raises MetadataTimeout when the answer did not come in time, MetadataError otherwise.
        """
        attempts = self.attempts if retry else 1
        pause = BACKOFF
        last = ""
        unreachable = True  # every attempt failed before a connection was made
        attempt = 0
        while True:
            attempt += 1
            if self.left() <= 0:
                break
            wait = 0.0
            try:
                resp = self._once(
                    method, path, headers or {}, read_timeout or self.read_timeout, body
                )
            except MetadataTimeout:
                raise
            except ConnectFailed as e:
                cause = e.__cause__ or e
                last = _describe(cause)
                if not (
                    isinstance(cause, socket.timeout)
                    or getattr(cause, "errno", None) in _UNREACHABLE
                ):
                    unreachable = False
            except (OSError, ProtocolError) as e:
                last = _describe(e)
                unreachable = False
            else:
                unreachable = False
                patient = resp.status in self.patient
                if resp.status < 500 and resp.status != 429 and not patient:
                    return resp
                last = f"HTTP {resp.status}"
                wait = _retry_after(resp.header("Retry-After"))
                if patient and retry:
                    attempts = attempt + 1  # until the deadline
            wait = max(pause, min(wait, BACKOFF_MAX * 5))
            if attempt < attempts and self.left() > wait:
                self.sleep(wait)
                pause = min(pause * 2, BACKOFF_MAX)
            else:
                break
        tried = f"after {attempt} attempt{'s' if attempt > 1 else ''}" if last else "(no time left)"
        error = MetadataUnreachable if unreachable and last else MetadataError
        raise error(f"{method} {self.where}{path}: {last or 'discovery timeout'} {tried}")

    def get(self, path: str, headers: dict[str, str] | None = None, **kw) -> Response:
        return self.request("GET", path, headers, **kw)

    def _once(
        self, method: str, path: str, headers: dict[str, str], read_timeout: float, body: bytes
    ) -> Response:
        what = f"{method} {self.where}{path}"
        if self.left() <= 0:
            raise MetadataTimeout(f"{what}: discovery timeout")
        budget = max(min(read_timeout, self.left()), 0.05)
        if not self._address:
            try:
                found = resolve(self.host, self.port, 0, self.clock() + budget, self.clock)
            except socket.timeout:
                raise MetadataTimeout(
                    f"{what}: resolving {self.host} took longer than the discovery timeout"
                ) from None
            except OSError as e:
                raise MetadataError(f"{what}: cannot resolve {self.host}: {e}") from None
            self._address = found[0]
        if self.scheme == "https" and self.tls is None:
            self.tls = default_tls()
        tls = self.tls if self.scheme == "https" else None
        target = Target(self.host, self._address, self.port, tls)
        self.requests += 1
        try:
            return exchange(
                target, method, path, headers, body,
                connect_timeout=min(self.connect_timeout, max(self.left(), 0.05)),
                read_timeout=budget, deadline=self.deadline, max_body=self.max_body,
                clock=self.clock,
            )  # fmt: skip
        except Deadline:
            raise MetadataTimeout(f"{what}: no answer within {budget:.1f}s") from None
        except BadRequest as e:
            raise MetadataError(f"{self.where}: {e}") from None
        except TooLarge:
            raise MetadataError(f"{what}: answer larger than {self.max_body} bytes") from None


def resolve(
    host: str, port: int, family: int, deadline: float, clock: Callable[[], float] = time.monotonic
) -> list[str]:
    """The addresses of ``host`` (of ``family``, or any when 0), waited for at most until
    ``deadline``: raises socket.timeout then, OSError (socket.gaierror) when it does not resolve."""
    if _is_literal(host):
        if family and family != (socket.AF_INET6 if ":" in host else socket.AF_INET):
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not of the address family asked")
        return [host]
    found: list = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except OSError as e:  # socket.gaierror included
            found.append(e)

    t = threading.Thread(target=lookup, name="k3snode-resolve", daemon=True)
    t.start()
    t.join(max(deadline - clock(), 0.0))
    if not found:
        raise socket.timeout(f"resolving {host} timed out")
    if isinstance(found[0], OSError):
        raise found[0]
    addresses = list(dict.fromkeys(info[4][0] for info in found[0]))
    if not addresses:
        raise OSError(f"no address for {host}")
    return addresses


def fetch(
    url: str,
    timeout: float,
    *,
    family: int = 0,
    headers: dict[str, str] | None = None,
    max_body: int = MAX_BODY,
    tls: object = None,
    redirects: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> Response:
    """GET ``url`` once, the whole answer within ``timeout`` (resolution and redirects included).

    Each address of the host (of ``family`` when given) is tried in turn. Up to ``redirects``
    redirects are followed, only to https:// URLs. Raises OSError (socket.timeout when the time
    ran out), ValueError (a bad URL or answer; TooLarge over ``max_body``)."""
    deadline = clock() + timeout
    for _ in range(redirects + 1):
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s):// URL: {url[:80]!r}")
        port = u.port or (443 if u.scheme == "https" else 80)
        context = (tls or default_tls()) if u.scheme == "https" else None
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        last: OSError = OSError(f"no address for {u.hostname}")
        resp = None
        for address in resolve(u.hostname, port, family, deadline, clock):
            left = deadline - clock()
            if left <= 0:
                raise Deadline(f"no answer within {timeout:.1f}s")
            try:
                resp = exchange(
                    Target(u.hostname, address, port, context), "GET", path, headers or {}, b"",
                    connect_timeout=left, read_timeout=left, deadline=deadline,
                    max_body=max_body, clock=clock,
                )  # fmt: skip
                break
            except ConnectFailed as e:
                last = e.__cause__ if isinstance(e.__cause__, OSError) else e
        if resp is None:
            raise last
        location = resp.header("Location")
        if resp.status not in (301, 302, 303, 307, 308) or not location or not redirects:
            return resp
        url = urljoin(url, location)
        if not url.startswith("https://"):
            raise ValueError(f"redirected to a non-HTTPS URL: {url[:80]!r}")
    raise ValueError(f"more than {redirects} redirects")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _retry_after(value: str) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds only); 0 when absent or a date."""
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        return 0.0


def race(
    bases: list[str],
    deadline: float,
    stagger: float = 0.15,
    window: float = CONNECT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int | None, list[str]]:
    """(index of the first base that accepts a TCP connection, [why each loser failed]).

    The first base is tried at once, each next one ``stagger`` seconds later or as soon as every
    earlier one has failed; the race ends at the first connection, when all have failed, or after
    ``window`` (bounded by ``deadline``). No request is sent: the winner is then asked as usual.
    """
    targets = []
    for base in bases:
        u = urlsplit(base)
        targets.append((u.hostname or "", u.port or (443 if u.scheme == "https" else 80)))
    end = min(deadline, clock() + window)
    sel = selectors.DefaultSelector()
    errors: dict[int, str] = {}
    started = 0
    next_start = clock()
    winner: int | None = None
    try:
        while winner is None and clock() < end:
            if started < len(targets) and (clock() >= next_start or len(errors) == started):
                i = started
                started += 1
                next_start = clock() + stagger
                host, port = targets[i]
                fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                try:
                    sock = socket.socket(fam, socket.SOCK_STREAM)
                except OSError as e:  # no IPv6 in this kernel, out of descriptors…
                    errors[i] = _describe(e)
                    continue
                sock.setblocking(False)
                try:
                    err = sock.connect_ex((host, port))
                except OSError as e:  # e.g. a host name: races are between addresses
                    err = e.errno or errno.EINVAL
                if err in (0, errno.EINPROGRESS):
                    sel.register(sock, selectors.EVENT_WRITE, i)
                else:
                    errors[i] = os.strerror(err).lower()
                    sock.close()
                continue
            if started == len(targets) and len(errors) == len(targets):
                break
            limit = end if started == len(targets) else min(end, next_start)
            for key, _ in sel.select(max(limit - clock(), 0.0)):
                sock = key.fileobj
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
                sel.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                if err == 0:
                    winner = key.data
                    break
                errors[key.data] = os.strerror(err).lower()
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
    notes = [f"{bases[i]}: {why}" for i, why in sorted(errors.items()) if i != winner]
    return winner, notes


def _describe(e: BaseException) -> str:
    return one_line(_describe_raw(e), 120)


def _describe_raw(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "connect timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
