"""The one HTTP client for metadata services: direct, short, bounded.

- **No proxies, ever.** ``http.client`` connects to the host it is given; ``HTTP_PROXY`` & co. are
  never read (a proxy cannot reach link-local addresses and made other tools hang for minutes).
- **Short timeouts**: ``connect_timeout`` for the TCP handshake, ``read_timeout`` for the whole
  response (status line, headers and body), enforced per read so a server that dribbles one
  byte a second is cut off too.
- **Bounded retries** with exponential backoff, only on connection errors, 5xx and 429 (a booting
  network, GCE maintenance, Azure's rate limit); never on timeouts, which would just wait again.
- **A body cap** (``max_body``): a metadata leaf is a few bytes, a JSON document a few KiB.
- **One deadline** for the whole discovery, shared by every request of a ``Client``.
- ``override`` (``[discovery] metadata_endpoint``) replaces the scheme, host and port of the
  provider's base URL, for tests and odd networks; the path stays the provider's.
"""

from __future__ import annotations

import errno
import http.client
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
    def __init__(self, host: str, port: int, connect_timeout: float) -> None:
        super().__init__(host, port, timeout=connect_timeout)

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
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
    requests: int = 0  # how many were sent (diagnostics)

    def __post_init__(self) -> None:
        u = urlsplit(self.override or self.base)
        self.scheme = u.scheme or "http"
        self.host = u.hostname or ""
        self.port = u.port or (443 if self.scheme == "https" else 80)

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
    ) -> Response:
        """Send one request (retrying connection errors, 5xx and 429 when ``retry``).

        Returns the response of any status the caller must interpret (200, 404, 401, 403…);
        raises MetadataTimeout when the answer did not come in time, MetadataError otherwise.
        """
        attempts = self.attempts if retry else 1
        pause = BACKOFF
        last = ""
        unreachable = True  # every attempt failed before a connection was made
        for attempt in range(1, attempts + 1):
            if self.left() <= 0:
                break
            try:
                resp = self._once(method, path, headers or {}, read_timeout or self.read_timeout)
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
                if resp.status < 500 and resp.status != 429:
                    return resp
                last = f"HTTP {resp.status}"
            if attempt < attempts and self.left() > pause:
                self.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX)
            else:
                break
        tried = f"after {attempt} attempt{'s' if attempt > 1 else ''}" if last else "(no time left)"
        error = MetadataUnreachable if unreachable and last else MetadataError
        raise error(f"{method} {self.where}{path}: {last or 'discovery timeout'} {tried}")

    def get(self, path: str, headers: dict[str, str] | None = None, **kw) -> Response:
        return self.request("GET", path, headers, **kw)

    def _once(self, method: str, path: str, headers: dict[str, str], read_timeout: float):
        left = self.left()
        if left <= 0:
            raise MetadataTimeout(f"{method} {self.where}{path}: discovery timeout")
        if self.scheme == "https":
            conn = _https_connection(self.host, self.port, min(self.connect_timeout, left))
        else:
            conn = _Connection(self.host, self.port, min(self.connect_timeout, left))
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
                conn.putheader("Content-Length", "0")
            conn.endheaders()
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


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "connect timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__
