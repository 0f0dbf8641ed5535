"""The one HTTP client for metadata services: direct, short, bounded.

- **No proxies, ever.** ``http.client`` connects to the host it is given; ``HTTP_PROXY`` & co. are
  never read (a proxy cannot reach link-local addresses and made other tools hang for minutes).
- **Short timeouts**: ``connect_timeout`` for the TCP handshake, ``read_timeout`` for the whole
  response (status line, headers and body), enforced per read so a server that dribbles one
  byte a second is cut off too.
- **Bounded retries** with exponential backoff, only on connection errors, 5xx and 429 (a booting
  network, GCE maintenance, Azure's rate limit); never on timeouts, which would just wait again.
  A provider may name statuses to retry until the deadline instead (Azure's 410 while its IMDS
  is not ready yet); a ``Retry-After`` of a 429/410/503 is honoured within the deadline.
- **Host names resolved inside the deadline**: a ``metadata_endpoint`` given as a name is resolved
  in a helper thread that is waited for at most until the deadline (a stuck resolver cannot make
  discovery wait its own 5 s × attempts).
- **A body cap** (``max_body``): a metadata leaf is a few bytes, a JSON document a few KiB.
- **One deadline** for the whole discovery, shared by every request of a ``Client``.
- ``override`` (``[discovery] metadata_endpoint``) replaces the scheme, host and port of the
  provider's base URL, for tests and odd networks; the path stays the provider's.
- ``race`` picks, between a service's IPv4 and IPv6 addresses, the first that accepts a TCP
  connection — the IPv4 one at once, the IPv6 one after a short stagger or as soon as the IPv4 one
  failed (RFC 6555/8305 "happy eyeballs", as cloud-init's ``url_helper.dual_stack``).
"""

from __future__ import annotations

import errno
import http.client
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from k3snode.discovery.errors import MetadataError, MetadataTimeout, MetadataUnreachable

MAX_BODY = 256 * 1024
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
ATTEMPTS = 4
BACKOFF = 0.1  # first pause; doubles, at most BACKOFF_MAX
BACKOFF_MAX = 1.0
USER_AGENT = "k3snode"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class _ConnectFailed(OSError):
    """The TCP connection itself could not be made (wraps the original error)."""


_UNREACHABLE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)


class _DeadlineSocket(socket.socket):
    """A socket whose every read waits at most until ``read_deadline``."""

    read_deadline = 0.0
    clock: Callable[[], float] = time.monotonic

    def recv_into(self, buffer, nbytes=0, flags=0):  # type: ignore[override]
        left = self.read_deadline - self.clock()
        if left <= 0:
            raise socket.timeout("read deadline passed")
        self.settimeout(left)
        return super().recv_into(buffer, nbytes, flags)


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, connect_timeout: float, address: str = "") -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.address = address or host  # a resolved address; ``host`` stays the Host header

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = _DeadlineSocket(raw.family, raw.type, raw.proto, fileno=raw.detach())
        sock.read_deadline = time.monotonic() + 3600
        self.sock = sock


def _https_connection(host: str, port: int, connect_timeout: float) -> http.client.HTTPConnection:
    import ssl

    return http.client.HTTPSConnection(
        host, port, timeout=connect_timeout, context=ssl.create_default_context()
    )


@dataclass
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
            except _ConnectFailed as e:
                cause = e.__cause__ or e
                last = _describe(cause)
                if not (
                    isinstance(cause, socket.timeout)
                    or getattr(cause, "errno", None) in _UNREACHABLE
                ):
                    unreachable = False
            except (OSError, http.client.HTTPException) as e:
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
    ):
        left = self.left()
        if left <= 0:
            raise MetadataTimeout(f"{method} {self.where}{path}: discovery timeout")
        if self.scheme == "https":
            conn = _https_connection(self.host, self.port, min(self.connect_timeout, left))
        else:
            if not self._address:
                self._address = self._resolve(method, path)
            conn = _Connection(
                self.host, self.port, min(self.connect_timeout, self.left()), self._address
            )
        self.requests += 1
        try:
            try:
                conn.connect()
            except OSError as e:
                raise _ConnectFailed(str(e)) from e
            budget = max(min(read_timeout, self.left()), 0.05)
            sock = conn.sock
            if isinstance(sock, _DeadlineSocket):
                sock.clock = self.clock
                sock.read_deadline = self.clock() + budget
            else:
                sock.settimeout(budget)
            conn.putrequest(method, path, skip_accept_encoding=True)
            sent = {"user-agent"}
            for k, v in headers.items():
                conn.putheader(k, v)
                sent.add(k.lower())
            conn.putheader("User-Agent", USER_AGENT)
            if method in ("PUT", "POST") and "content-length" not in sent:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            try:
                r = conn.getresponse()
                body = r.read(self.max_body + 1)
            except (socket.timeout, TimeoutError):
                raise MetadataTimeout(
                    f"{method} {self.where}{path}: no answer within {budget:.1f}s"
                ) from None
            if len(body) > self.max_body:
                raise MetadataError(
                    f"{method} {self.where}{path}: answer larger than {self.max_body} bytes"
                )
            return Response(r.status, body, {k.lower(): v for k, v in r.getheaders()})
        finally:
            conn.close()

    def _resolve(self, method: str, path: str) -> str:
        """The host name's first address, waited for at most until the deadline."""
        import threading

        found: list = []

        def lookup() -> None:
            try:
                found.append(socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM))
            except OSError as e:  # socket.gaierror included
                found.append(e)

        t = threading.Thread(target=lookup, name="k3snode-resolve", daemon=True)
        t.start()
        t.join(max(self.left(), 0.0))
        if not found:
            raise MetadataTimeout(
                f"{method} {self.where}{path}: resolving {self.host} took longer than the "
                "discovery timeout"
            )
        if isinstance(found[0], OSError) or not found[0]:
            raise MetadataError(
                f"{method} {self.where}{path}: cannot resolve {self.host}: {found[0] or 'no address'}"
            )
        return found[0][0][4][0]


def _is_literal(host: str) -> bool:
    import ipaddress

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
    import selectors

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
    from k3snode.bounded import one_line

    return one_line(_describe_raw(e), 120)


def _describe_raw(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "connect timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
