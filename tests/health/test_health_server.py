"""``/healthz`` and ``/metrics`` served for real on a local port: answers, and the bounds on what
clients can take (connections, time, request size)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from helpers import wait_for

from k3snode.health.checks import Observation
from k3snode.health.metrics import Metrics
from k3snode.health.model import HealthModel
from k3snode.health.server import HealthServer


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def test_http_healthz_and_metrics():
    clock = Clock()
    model = HealthModel(grace=10, wall=clock)
    metrics = Metrics()
    server = HealthServer("127.0.0.1", 0, model.snapshot, metrics.render)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        model.observe(Observation("discovery", True, "5.6.7.8 (interface)"))
        metrics.update(
            addresses=(("5.6.7.8", "ipv4", "interface"), ("2a01:4f8::1", "ipv6", "metadata"))
        )
        metrics.restarts.labels("restarted").inc()
        metrics.discovery_failures.labels("timeout").inc()
        code, ctype, body = _get(base + "/healthz")
        assert code == 200 and ctype == "application/json"
        assert json.loads(body)["status"] == "ok"
        model.observe(
            Observation("config", False, "config.yaml differs (changed node-external-ip)")
        )
        clock.t += 11
        code, _, body = _get(base + "/healthz")
        assert code == 503
        checks = {c["check"]: c for c in json.loads(body)["checks"]}
        assert checks["config"]["state"] == "failing"
        assert "differs" in checks["config"]["detail"]
        assert checks["discovery"]["state"] == "ok"
        metrics.update(health=model.snapshot())
        code, ctype, text = _get(base + "/metrics")
        assert code == 200 and ctype.startswith("text/plain")
        assert (
            'k3snode_external_address_info{address="2a01:4f8::1",family="ipv6",source="metadata"} 1.0'
            in text
        )
        assert 'k3snode_k3s_restarts_total{outcome="restarted"} 1.0' in text
        assert 'k3snode_discovery_failures_total{reason="timeout"} 1.0' in text
        assert 'k3snode_health_check_ok{check="config"} 0.0' in text
        assert "k3snode_healthy 0.0" in text
        assert _get(base + "/")[0] == 404
    finally:
        server.stop()


def test_http_connections_beyond_the_cap_get_503_at_once_and_slow_ones_are_cut():
    model = HealthModel(grace=10)
    server = HealthServer(
        "127.0.0.1", 0, model.snapshot, lambda: b"", max_connections=2, deadline=1.0
    )
    server.start()
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /heal")  # never finished
            held.append(s)
        time.sleep(0.2)
        code, _, _ = _get(f"http://127.0.0.1:{server.port}/healthz")
        assert code == 503, "a third connection is told busy instead of waiting"
        for s in held:  # the slow ones are closed by the server after the deadline
            assert s.recv(100) == b""
        # each handler thread frees its slot just after closing: poll briefly, not assume
        wait_for(lambda: _get(f"http://127.0.0.1:{server.port}/healthz")[0] == 200, timeout=5,
                 what="a free slot once the slow connections were cut")  # fmt: skip
        big = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        big.sendall(b"GET /healthz HTTP/1.0\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n")
        answer = big.recv(100)
        assert not answer.startswith(b"HTTP/1.0 200"), answer
        big.close()
    finally:
        for s in held:
            s.close()
        server.stop()
