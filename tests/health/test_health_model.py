"""The health model's grace period, driven by a test clock (the monotonic clock's rule itself is
in ``tests/hardening/test_inputs.py``)."""

from __future__ import annotations

import pytest

from k3snode.health.checks import Observation
from k3snode.health.model import HealthModel


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_one_failure_is_grace_then_failing_then_ok():
    clock = Clock()
    m = HealthModel(grace=60, wall=clock)
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
    m = HealthModel(grace=600, wall=Clock())
    m.observe(Observation("k3s", False, "restart failed"), immediate=True)
    assert m.snapshot().status == "degraded"
    m.observe(Observation("k3s", True, "active"))
    assert m.snapshot().status == "ok"


def test_health_json_leaves_out_what_is_not_known():
    clock = Clock()
    m = HealthModel(grace=0, wall=clock)
    m.observe(Observation("k3s", True, "active"))
    m.observe(Observation("discovery", False, "no external address", facts={"provider": "aws"}))
    got = m.snapshot().to_json()
    assert got["status"] == "degraded"
    assert got["checks"] == [
        {"check": "discovery", "state": "failing", "detail": "no external address",
         "since": 1_000_000.0, "facts": {"provider": "aws"}, "changed": 1_000_000.0},
        {"check": "k3s", "state": "ok", "detail": "active", "changed": 1_000_000.0},
    ]  # fmt: skip
