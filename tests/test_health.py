"""The health model's grace period (with a test clock), the status file, and the HTTP endpoint
served for real on a local port."""

from __future__ import annotations

import json
import os
import stat
import time
import urllib.error
import urllib.request

import pytest
from helpers import wait_for

from k3snode import health
from k3snode.checks import Observation


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_one_failure_is_grace_then_failing_then_ok():
    clock = Clock()
    m = health.HealthModel(grace=60, wall=clock)
    m.observe(Observation("discovery", True, "5.6.7.8 (interface)"))
    assert m.snapshot().status == "ok"
    m.observe(Observation("discovery", False, "metadata timed out"))
    snap = m.snapshot()
    assert snap.status == "ok" and snap.checks[0].state == "grace"
    assert m.next_change() == pytest.approx(60)
    clock.t += 30
    m.observe(Observation("discovery", False, "metadata timed out again"))
    assert m.snapshot().checks[0].since == 1_000_000.0, "grace counts from the first failure"
    clock.t += 31
    snap = m.snapshot()
    assert snap.status == "degraded" and snap.checks[0].state == "failing"
    assert snap.checks[0].detail == "metadata timed out again"
    m.observe(Observation("discovery", True, "5.6.7.8 (metadata aws)"))
    assert m.snapshot().status == "ok"
    assert m.next_change() is None


def test_immediate_failure_skips_the_grace():
    m = health.HealthModel(grace=600, wall=Clock())
    m.observe(Observation("k3s", False, "restart failed"), immediate=True)
    assert m.snapshot().status == "degraded"
    m.observe(Observation("k3s", True, "active"))
    assert m.snapshot().status == "ok"


def test_status_file_is_atomic_world_readable_json(tmp_path):
    path = str(tmp_path / "run" / "status.json")
    health.write_status(path, {"pid": 1, "summary": "ok"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert health.read_status(path) == {"pid": 1, "summary": "ok"}
    with open(path, "w") as f:
        f.write("{torn")
    assert health.read_status(path) is None
    health.remove_status(path)
    assert health.read_status(path) is None


@pytest.mark.parametrize(
    ("error", "label"),
    [
        ("no external address found", "no-address"),
        ("aws: metadata timed out after 2s", "timeout"),
        ("cannot read interfaces: permission denied", "interfaces"),
        ("tailscale is not running (BackendState 'Stopped')", "tailscale"),
        ("something odd", "other"),
    ],
)
def test_failure_reasons_are_a_small_set(error, label):
    assert health.failure_reason(error) == label


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def test_http_healthz_and_metrics():
    clock = Clock()
    model = health.HealthModel(grace=10, wall=clock)
    metrics = health.Metrics()
    server = health.HealthServer("127.0.0.1", 0, model.snapshot, metrics.render)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        model.observe(Observation("discovery", True, "5.6.7.8 (interface)"))
        metrics.set_addresses(
            [("5.6.7.8", "ipv4", "interface"), ("2a01:4f8::1", "ipv6", "metadata")]
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
        metrics.set_health(model.snapshot())
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
    import socket

    model = health.HealthModel(grace=10)
    server = health.HealthServer(
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
