"""``/healthz`` and ``/metrics`` on a local address, served from a thread, bounded.

Whatever local clients do, they cannot take more than ``MAX_CONNECTIONS`` handler threads and
sockets (one more connection is answered 503 and closed at once), hold one longer than
``CONNECTION_DEADLINE`` seconds for a whole exchange (reads *and* writes: a client sending one byte
a second is cut off), or send more than ``MAX_REQUEST_BYTES`` of request line and headers (431).
The daemon's loop never waits for them: the server reads the health and the metrics through the
two callables it was given.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from k3snode.health.model import Health

MAX_CONNECTIONS = 16
CONNECTION_DEADLINE = 5.0
MAX_REQUEST_BYTES = 8192
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _CappedReader:
    """A file over the request stream that ends (EOF) after ``limit`` bytes in total."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def readline(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        line = self._raw.readline(want)
        self._left -= len(line)
        return line

    def read(self, size: int = -1) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._raw.read(want)
        self._left -= len(data)
        return data

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    def close(self) -> None:
        self._raw.close()


class _DeadlineSocket(socket.socket):
    """An accepted connection whose every read and write ends by ``deadline`` (monotonic)."""

    deadline = 0.0

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("connection deadline passed")
        self.settimeout(left)

    def recv_into(self, *args: Any, **kw: Any) -> int:  # type: ignore[override]
        self._arm()
        return super().recv_into(*args, **kw)

    def sendall(self, *args: Any, **kw: Any) -> None:  # type: ignore[override]
        self._arm()
        return super().sendall(*args, **kw)

    def send(self, *args: Any, **kw: Any) -> int:  # type: ignore[override]
        self._arm()
        return super().send(*args, **kw)


class _Handler(BaseHTTPRequestHandler):
    server_version = "k3snode"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.rfile = _CappedReader(self.rfile, MAX_REQUEST_BYTES)  # type: ignore[assignment]

    def do_GET(self) -> None:
        if self.rfile.exhausted:  # type: ignore[attr-defined]
            self._send(431, "text/plain", b"request too large\n")
            return
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            h = self.server.get_health()
            body = (json.dumps(h.to_json(), indent=2) + "\n").encode()
            self._send(200 if h.ok else 503, "application/json", body)
        elif path == "/metrics":
            body = self.server.get_metrics()
            self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)
        else:
            self._send(404, "text/plain", b"not found: try /healthz or /metrics\n")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        health: Callable[[], Health],
        metrics: Callable[[], bytes],
        max_connections: int,
        deadline: float,
        listener: socket.socket | None = None,
    ) -> None:
        self.get_health = health
        self.get_metrics = metrics
        self.deadline = deadline
        self.slots = threading.BoundedSemaphore(max_connections)
        self.request_queue_size = max_connections
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler, bind_and_activate=listener is None)
        if listener is not None:  # bound and listening already (listener.py, before READY)
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()
            self.server_name = str(self.server_address[0])
            self.server_port = self.server_address[1]

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks for the host's FQDN: a reverse DNS query that stalls
        # start-up for seconds on a node without /etc/hosts. The name is unused.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[Any, Any]:
        raw, addr = self.socket.accept()
        sock = _DeadlineSocket(raw.family, raw.type, raw.proto, fileno=raw.detach())
        sock.deadline = time.monotonic() + self.deadline
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):  # busy: say so without waiting, close
                request.setblocking(False)
                socket.socket.send(request, _BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: give the slot back
            self.slots.release()
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out or went away is not the daemon's error


class HealthServer:
    """``/healthz`` (``health()``'s JSON, 200 or 503) and ``/metrics`` (``metrics()``'s bytes)."""

    def __init__(
        self,
        listen: str,
        port: int,
        health: Callable[[], Health],
        metrics: Callable[[], bytes],
        max_connections: int = MAX_CONNECTIONS,
        deadline: float = CONNECTION_DEADLINE,
        listener: socket.socket | None = None,
    ) -> None:
        self._server = _Server((listen, port), health, metrics, max_connections, deadline, listener)
        self.port = self._server.server_address[1]
        # A long poll interval: the thread sleeps in select until a request arrives.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(3600,), name="k3snode-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket; the serving thread dies with the process."""
        self._server.server_close()
