"""The daemon's health: checks with a grace period, the status file, ``/healthz`` and ``/metrics``.

Components report ``checks.Observation``s; a failing check is in ``grace`` until it has failed
for ``[health] grace`` seconds (one failed poll is not an outage), then ``failing``. The node is
``ok`` while no check is failing, else ``degraded`` — ``/healthz`` answers 200 or 503 with every
check and its reason. The daemon shows a node nobody configured as ``not-configured`` (503). The status file (``<run_dir>/status.json``, 0644, no secrets) is what
``k3snode status`` reads; the HTTP server reads the same snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from k3snode import fileio

if TYPE_CHECKING:
    from k3snode.health.checks import Observation

log = logging.getLogger("k3snode")


@dataclass(frozen=True)
class CheckState:
    check: str
    state: str  # ok | grace | failing
    detail: str
    since: float | None = None  # unix time the check started failing
    facts: dict[str, str] = field(default_factory=dict)
    changed: float | None = None  # unix time the check last turned ok or not ok (first seen)

    @property
    def ok(self) -> bool:
        return self.state != "failing"


@dataclass(frozen=True)
class Health:
    status: str  # ok | degraded
    checks: tuple[CheckState, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def failing(self) -> list[CheckState]:
        return [c for c in self.checks if c.state != "ok"]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [
                {k: v for k, v in asdict(c).items() if v not in (None, {})} for c in self.checks
            ],
        }


class HealthModel:
    """Observations in, a ``Health`` out; remembers since when each check fails."""

    def __init__(
        self,
        grace: float,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Grace is measured on ``clock`` (monotonic: a step of the wall clock changes nothing);
        ``wall`` only dates ``since`` for people. Tests that inject one clock get it for both."""
        self.grace = grace
        self._wall = wall
        self._clock = clock or (wall if wall is not time.time else time.monotonic)
        self._obs: dict[str, Observation] = {}
        self._failing_since: dict[str, float] = {}  # monotonic
        self._failing_wall: dict[str, float] = {}  # the same moment on the wall clock
        self._forced: dict[str, str] = {}  # check -> reason that fails it at once (no grace)
        self._changed: dict[str, float] = {}  # check -> when it last turned ok / not ok
        self._lock = threading.Lock()  # the HTTP thread reads while the loop writes

    def observe(self, obs: Observation, immediate: bool = False) -> None:
        """Record one observation; ``immediate`` skips the grace period (boot wait expired)."""
        with self._lock:
            self._observe(obs, immediate)

    def _observe(self, obs: Observation, immediate: bool) -> None:
        before = self._obs.get(obs.check)
        if before is None or before.ok != obs.ok:
            self._changed[obs.check] = self._wall()
        self._obs[obs.check] = obs
        if obs.ok:
            self._failing_since.pop(obs.check, None)
            self._failing_wall.pop(obs.check, None)
            self._forced.pop(obs.check, None)
        else:
            if obs.check not in self._failing_since:
                self._failing_since[obs.check] = self._clock()
                self._failing_wall[obs.check] = self._wall()
            if immediate:
                self._forced[obs.check] = obs.detail

    def snapshot(self) -> Health:
        now = self._clock()
        with self._lock:
            obs_all = dict(self._obs)
            failing_since = dict(self._failing_since)
            failing_wall = dict(self._failing_wall)
            forced = set(self._forced)
            changed = dict(self._changed)
        states = []
        for name in sorted(obs_all):
            obs = obs_all[name]
            since = failing_since.get(name)
            if obs.ok:
                state = "ok"
            elif name in forced or (since is not None and now - since >= self.grace):
                state = "failing"
            else:
                state = "grace"
            shown = failing_wall.get(name)
            states.append(
                CheckState(name, state, obs.detail, shown, dict(obs.facts), changed.get(name))
            )
        status = "degraded" if any(s.state == "failing" for s in states) else "ok"
        return Health(status, tuple(states))

    def next_change(self) -> float | None:
        """Seconds until a check in grace turns failing (when the status must be rewritten)."""
        now = self._clock()
        with self._lock:
            left = [
                since + self.grace - now
                for name, since in self._failing_since.items()
                if name not in self._forced
            ]
        left = [x for x in left if x > 0]
        return min(left) if left else None


# ---------------------------------------------------------------------------------------------
# Status file


def write_status(path: str, data: dict[str, Any]) -> None:
    """Atomically replace the status file, readable by everyone (it never holds a secret)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    fileio.atomic_write(path, text.encode(), mode=0o644)


def read_status(path: str) -> dict[str, Any] | None:
    raw = fileio.read_bytes(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def remove_status(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# ---------------------------------------------------------------------------------------------
# Metrics (prometheus-client, imported only when the endpoint is on)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.address = Gauge(
            "k3snode_external_address_info",
            "The node's current external addresses (node-external-ip)",
            ["address", "family", "source"],
            registry=r,
        )
        self.discovery_seconds = Histogram(
            "k3snode_discovery_duration_seconds",
            "How long one discovery took",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.discovery_failures = Counter(
            "k3snode_discovery_failures_total", "Discoveries that failed", ["reason"], registry=r
        )
        self.config_writes = Counter(
            "k3snode_config_writes_total", "Writes that changed K3s's config", registry=r
        )
        self.restarts = Counter(
            "k3snode_k3s_restarts_total",
            "K3s restarts asked for, by outcome",
            ["outcome"],
            registry=r,
        )
        self.last_change = Gauge(
            "k3snode_last_change_timestamp_seconds",
            "Unix time the external addresses last changed",
            registry=r,
        )
        self.k3s_active = Gauge(
            "k3snode_k3s_unit_active", "1 when K3s's unit is active", registry=r
        )
        self.check_ok = Gauge(
            "k3snode_health_check_ok",
            "1 when a health check passes (or is in grace)",
            ["check"],
            registry=r,
        )
        self.healthy = Gauge("k3snode_healthy", "1 when no health check is failing", registry=r)
        peer = ["interface", "peer", "name"]
        self.peer_handshake_age = Gauge(
            "k3snode_wireguard_peer_handshake_age_seconds",
            "Seconds since a WireGuard peer's latest handshake (-1: never)",
            peer,
            registry=r,
        )
        self.peer_stale = Gauge(
            "k3snode_wireguard_peer_stale", "1 when a WireGuard peer is stale", peer, registry=r
        )
        self.peer_rx = Gauge(
            "k3snode_wireguard_peer_receive_bytes", "Bytes received from a peer", peer, registry=r
        )
        self.peer_tx = Gauge(
            "k3snode_wireguard_peer_transmit_bytes", "Bytes sent to a peer", peer, registry=r
        )
        self.tailnet_peer_online = Gauge(
            "k3snode_tailscale_peer_online",
            "1 when a tailnet peer is online",
            ["peer", "name"],
            registry=r,
        )

        self.registration_published = Gauge(
            "k3snode_registration_published_info",
            "Addresses this server publishes in the registration DNS name",
            ["name", "address"],
            registry=r,
        )
        self.registration_last_update = Gauge(
            "k3snode_registration_last_update_timestamp_seconds",
            "Unix time of the last registration update (either outcome)",
            registry=r,
        )
        self.registration_last_ok = Gauge(
            "k3snode_registration_last_update_ok",
            "1 when the last registration update succeeded",
            registry=r,
        )
        self.registration_updates = Counter(
            "k3snode_registration_updates_total",
            "Registration updates, by outcome",
            ["outcome"],
            registry=r,
        )

    def set_registration(self, status: dict[str, Any] | None) -> None:
        """The registration gauges from the keeper's status (None: this node publishes nothing)."""
        self.registration_published.clear()
        if not status:
            return
        for address in status["published"]:
            self.registration_published.labels(status["name"], address).set(1)
        last = status.get("last_update")
        if last:
            self.registration_last_update.set(last["time"])
            self.registration_last_ok.set(1 if last["ok"] else 0)

    def set_addresses(self, addrs: list[tuple[str, str, str]]) -> None:
        self.address.clear()
        for address, family, source in addrs:
            self.address.labels(address, family, source).set(1)

    def set_health(self, health: Health) -> None:
        self.check_ok.clear()
        for c in health.checks:
            self.check_ok.labels(c.check).set(1 if c.ok else 0)
        self.healthy.set(1 if health.ok else 0)

    def set_peers(self, observations: list[Observation], now: float) -> None:
        """Per-peer gauges from the mesh/underlay observers' last answers."""
        from k3snode.mesh.wg.health import peer_metrics

        gauges = {
            "handshake_age_seconds": self.peer_handshake_age,
            "stale": self.peer_stale,
            "rx_bytes": self.peer_rx,
            "tx_bytes": self.peer_tx,
        }
        for g in (*gauges.values(), self.tailnet_peer_online):
            g.clear()
        for labels, values in peer_metrics(observations, now):
            for key, gauge in gauges.items():
                gauge.labels(labels["interface"], labels["peer"], labels["name"]).set(values[key])
        for obs in observations:
            for p in obs.peers:
                if p.online is not None:
                    self.tailnet_peer_online.labels(p.public_key, p.name).set(1 if p.online else 0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def failure_reason(error: str) -> str:
    """A short, bounded label for a discovery failure (metrics labels must not explode)."""
    e = error.lower()
    for key, label in (
        ("no external address", "no-address"),
        ("no default route", "no-route"),
        ("timed out", "timeout"),
        ("timeout", "timeout"),
        ("interfaces", "interfaces"),
        ("tailscale", "tailscale"),
        ("metadata", "metadata"),
    ):
        if key in e:
            return label
    return "other"


# ---------------------------------------------------------------------------------------------
# HTTP


# Bounds on what local clients can take from the daemon: at most ``MAX_CONNECTIONS`` handler
# threads (one more connection is answered 503 and closed at once), ``CONNECTION_DEADLINE``
# seconds for a whole exchange (a client sending one byte a second is cut off), and
# ``MAX_REQUEST_BYTES`` of request line and headers.
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


def _deadline_socket_class():
    import socket

    class DeadlineSocket(socket.socket):
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

    return DeadlineSocket


class HealthServer:
    """``/healthz`` and ``/metrics`` on a local address, served from a thread.

    Whatever clients do, they cannot take more than ``MAX_CONNECTIONS`` threads and sockets or
    hold one longer than ``CONNECTION_DEADLINE``; the daemon's loop never waits for them.
    """

    def __init__(
        self,
        listen: str,
        port: int,
        health: Callable[[], Health],
        metrics: Callable[[], bytes],
        max_connections: int = MAX_CONNECTIONS,
        deadline: float = CONNECTION_DEADLINE,
    ) -> None:
        import socket
        import socketserver
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        get_health, get_metrics = health, metrics
        deadline_socket = _deadline_socket_class()
        slots = threading.BoundedSemaphore(max_connections)

        class Handler(BaseHTTPRequestHandler):
            server_version = "k3snode"

            def setup(self) -> None:
                super().setup()
                self.rfile = _CappedReader(self.rfile, MAX_REQUEST_BYTES)  # type: ignore[assignment]

            def do_GET(self) -> None:
                if self.rfile.exhausted:  # type: ignore[attr-defined]
                    self._send(431, "text/plain", b"request too large\n")
                    return
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    h = get_health()
                    body = (json.dumps(h.to_json(), indent=2) + "\n").encode()
                    self._send(200 if h.ok else 503, "application/json", body)
                elif path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", get_metrics())
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

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = max_connections
            address_family = socket.AF_INET6 if ":" in listen else socket.AF_INET

            def server_bind(self) -> None:
                # HTTPServer.server_bind asks for the host's FQDN: a reverse DNS query that
                # stalls start-up for seconds on a node without /etc/hosts. The name is unused.
                socketserver.TCPServer.server_bind(self)
                self.server_name = str(self.server_address[0])
                self.server_port = self.server_address[1]

            def get_request(self) -> tuple[Any, Any]:
                raw, addr = self.socket.accept()
                sock = deadline_socket(raw.family, raw.type, raw.proto, fileno=raw.detach())
                sock.deadline = time.monotonic() + deadline
                return sock, addr

            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(blocking=False):
                    with contextlib.suppress(OSError):  # busy: say so without waiting, close
                        request.setblocking(False)
                        socket.socket.send(request, _BUSY)
                    self.shutdown_request(request)
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:  # no thread started: give the slot back
                    slots.release()
                    self.shutdown_request(request)
                    raise

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out or went away is not the daemon's error

        self._server = Server((listen, port), Handler)
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


def peer_rows(observations: list[Observation], now: float) -> list[dict[str, Any]]:
    """The peers of every observation, for the status file (no keys beyond public ones)."""
    rows = []
    for obs in observations:
        for p in obs.peers:
            row: dict[str, Any] = {
                "check": obs.check,
                "interface": p.interface,
                "peer": p.public_key,
                "name": p.name,
                "endpoint": p.endpoint,
                "stale": p.stale,
            }
            if p.online is not None:
                row["online"] = p.online
            if p.last_handshake is not None:
                row["handshake_age"] = round(max(0.0, now - p.last_handshake), 1)
            rows.append(row)
    return rows
