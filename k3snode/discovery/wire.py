"""One HTTP/1.1 request and its answer over one socket, every wait bounded by one deadline.

Written on ``socket`` rather than ``http.client`` for two measured reasons:

- **Import cost.** ``http.client`` imports ``email.parser``/``email.message`` (and through them
  ``email.*``, ``calendar``, ``quopri``…) and ``ssl``: 15–25 ms of CPU on this machine
  (``python -X importtime``), a fifth of ``k3snode detect`` on a cloud and more than the metadata
  requests themselves. This module imports nothing that the interpreter has not loaded already;
  ``ssl`` (≈ 10 ms) is imported only when a request is HTTPS.
- **A deadline for the whole answer, on HTTPS too.** ``http.client`` sets one timeout per socket
  operation; a server that sends one byte every second never trips it, and with TLS the per-read
  timeout is re-armed inside each record. Here the socket is non-blocking and every wait (TCP
  connect aside, which has its own ``connect_timeout``) — TLS handshake, send, each read — waits
  at most until the deadline.

It speaks the small part of HTTP/1.1 (RFC 9112) the metadata services, echo services and a script
download need: one request per connection (``Connection: close``), bodies delimited by
``Content-Length``, ``chunked`` or the end of the connection, 1xx answers skipped, headers capped
at 64 KiB and the body at ``max_body``. No proxies (the address given is the one connected to),
no redirects (the caller decides), no compression (none is offered).
"""

from __future__ import annotations

import select
import socket
from typing import Callable

from k3snode.record import field, record

MAX_HEAD = 64 * 1024
MAX_LINE = 1024
USER_AGENT = "k3snode"


@record
class Response:
    """An HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class ProtocolError(ValueError):
    """The answer is not HTTP/1.x as this module reads it (or ended early)."""


class TooLarge(ProtocolError):
    """The body is larger than ``max_body``."""


class BadRequest(ValueError):
    """The request itself cannot be sent: a control character in the path or a header."""


class ConnectFailed(OSError):
    """The TCP connection itself could not be made (``__cause__`` is the original error)."""


class Deadline(socket.timeout):
    """The whole answer did not arrive before the deadline."""


@record
class Target:
    """Where to connect (``address`` is an IP literal) and what to call the host (``host``)."""

    host: str  # Host header and TLS server name
    address: str
    port: int
    tls: object = None  # an ssl.SSLContext for HTTPS, else None


def exchange(
    target: Target,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    max_body: int,
    clock: Callable[[], float],
) -> Response:
    """Send one request and read its whole answer (TLS handshake included) within
    ``read_timeout`` seconds of the TCP connection, and before ``deadline`` (``clock`` seconds).

    Raises ConnectFailed (no TCP connection within ``connect_timeout``), Deadline, TooLarge,
    ProtocolError, BadRequest, or OSError (reset, TLS errors such as an untrusted certificate)."""
    request = _request(target, method, path, headers, body)
    try:
        raw = socket.create_connection((target.address, target.port), connect_timeout)
    except OSError as e:
        raise ConnectFailed(str(e)) from e
    stream = _Stream(raw, min(deadline, clock() + read_timeout), clock)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setblocking(False)
        if target.tls is not None:
            stream.start_tls(target.tls, target.host)
        stream.send(request)
        return _read_response(stream, method, max_body)
    finally:
        stream.close()


def _request(target: Target, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    if any(c <= " " or c == "\x7f" for c in method + path):
        raise BadRequest(f"a control character or space in the request line: {path[:60]!r}")
    for text in (*headers, *headers.values()):
        if "\r" in text or "\n" in text or "\0" in text:
            raise BadRequest(f"a line break or NUL in a header: {text[:40]!r}")
    default = 443 if target.tls is not None else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    lines = [f"{method} {path or '/'} HTTP/1.1", f"Host: {host}" + (
        "" if target.port == default else f":{target.port}")]  # fmt: skip
    sent = {"host", "connection"}
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
        sent.add(name.lower())
    if "user-agent" not in sent:
        lines.append(f"User-Agent: {USER_AGENT}")
    if (body or method in ("PUT", "POST")) and "content-length" not in sent:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


class _Stream:
    """A non-blocking socket whose every wait ends at the deadline."""

    def __init__(self, sock: socket.socket, deadline: float, clock: Callable[[], float]) -> None:
        self.sock = sock
        self.deadline = deadline
        self.clock = clock
        self.want_read: tuple[type[BaseException], ...] = (BlockingIOError,)
        self.want_write: tuple[type[BaseException], ...] = ()

    def _wait(self, events: int) -> None:
        left = self.deadline - self.clock()
        poll = select.poll()
        poll.register(self.sock, events)
        if left <= 0 or not poll.poll(left * 1000):
            raise Deadline("the answer did not come before the deadline")

    def _call(self, blocked: int, op: Callable, *args):
        while True:
            try:
                return op(*args)
            except self.want_write:
                self._wait(select.POLLOUT)
            except self.want_read:
                self._wait(blocked)

    def start_tls(self, context, server_name: str) -> None:
        import ssl  # only HTTPS pays for it (≈ 10 ms of import)

        self.want_read = (BlockingIOError, ssl.SSLWantReadError)
        self.want_write = (ssl.SSLWantWriteError,)
        self.sock = context.wrap_socket(
            self.sock, server_hostname=server_name, do_handshake_on_connect=False
        )
        self._call(select.POLLIN, self.sock.do_handshake)  # type: ignore[attr-defined]

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._call(select.POLLOUT, self.sock.send, view)
            view = view[n:]

    def recv(self) -> bytes:
        return self._call(select.POLLIN, self.sock.recv, 65536)

    def close(self) -> None:
        self.sock.close()


def _read_response(stream: _Stream, method: str, max_body: int) -> Response:
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > MAX_HEAD:
                raise ProtocolError(f"headers longer than {MAX_HEAD} bytes")
            more = stream.recv()
            if not more:
                raise ProtocolError("connection closed before a complete answer")
            buf += more
            end = buf.find(b"\r\n\r\n")
        status, headers = _head(buf[:end].decode("latin-1"))
        buf = buf[end + 4 :]
        if not 100 <= status < 200:
            break
    if method == "HEAD" or status in (204, 304):
        return Response(status, b"", headers)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _chunked(stream, buf, max_body)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if length > max_body:
            raise TooLarge(f"answer larger than {max_body} bytes")
        body = _until(stream, buf, length)
    else:
        body = _to_end(stream, buf, max_body)
    return Response(status, body, headers)


def _head(text: str) -> tuple[int, dict[str, str]]:
    lines = text.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ProtocolError(f"bad header line {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(code), headers


def _until(stream: _Stream, buf: bytes, length: int) -> bytes:
    parts = [buf]
    have = len(buf)
    while have < length:
        more = stream.recv()
        if not more:
            raise ProtocolError(f"answer ended after {have} of {length} bytes")
        parts.append(more)
        have += len(more)
    return b"".join(parts)[:length]


def _to_end(stream: _Stream, buf: bytes, max_body: int) -> bytes:
    parts = [buf]
    have = len(buf)
    while True:
        if have > max_body:
            raise TooLarge(f"answer larger than {max_body} bytes")
        more = stream.recv()
        if not more:
            return b"".join(parts)
        parts.append(more)
        have += len(more)


def _chunked(stream: _Stream, buf: bytes, max_body: int) -> bytes:
    body = bytearray()
    while True:
        while b"\r\n" not in buf:
            if len(buf) > MAX_LINE:
                raise ProtocolError("chunk size line too long")
            more = stream.recv()
            if not more:
                raise ProtocolError("chunked answer ended early")
            buf += more
        line, buf = buf.split(b"\r\n", 1)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError("bad chunk size") from None
        if size == 0:
            return bytes(body)  # trailers are not read: the connection is closed
        if len(body) + size > max_body:
            raise TooLarge(f"answer larger than {max_body} bytes")
        while len(buf) < size + 2:
            more = stream.recv()
            if not more:
                raise ProtocolError("chunked answer ended early")
            buf += more
        body += buf[:size]
        buf = buf[size + 2 :]
