"""Go's ``time.Time`` JSON read without ``datetime`` (``k3snode/mesh/tailscale/gotime.py``):
``parse_time`` on valid and invalid text, and the fast ``reader()`` agreeing with it everywhere."""

from __future__ import annotations

import calendar
import time

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from k3snode.mesh.tailscale import gotime


def T(text):
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T15:00:00Z", T("2026-11-26T15:00:00Z")),
        ("2026-11-26T16:00:00.5+01:00", T("2026-11-26T15:00:00Z") + 0.5),
        ("2026-11-26T14:00:00.123456789-01:00", T("2026-11-26T15:00:00Z") + 0.123456789),
        ("2026-02-31T00:00:00Z", None),
        ("2026-11-26 15:00:00", None),
        ("0001-01-01T00:00:00Z", None),
        ("2026-13-45T99:00:00Z", None),
        ("", None),
    ],
)
def test_parse_time(text, expected):
    assert gotime.parse_time(text) == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T16:59:30.123456789Z", "2026-11-26T16:59:30Z", "2024-02-29T23:59:59.5Z",
        "2026-02-29T00:00:00Z", "2026-11-26T16:59:60Z", "2026-11-26T16:59:3.Z",
        "2026-11-26T16:59:30.Z", "2026-11-26T16:59:30.1e5Z", "2026-11-26T16:59:٣٠Z",
        "2026-11-26T16:59:30+01:00", "2026-11-26T24:00:00Z", "0001-01-01T00:00:00Z", "", None, 7,
        "2026-11-26T16:59:30.25", "2026-11-26T16:59:3_0Z", "2026-11-26T16:59: 30Z",
    ],
)  # fmt: skip
def test_reader_agrees_with_parse_time(text):
    read = gotime.reader()
    assert read(text) == gotime.parse_time(text)
    assert read(text) == gotime.parse_time(text)  # the second time from its minute cache


_DIGITS = hs.text("0123456789", min_size=1, max_size=4)


@given(
    hs.lists(
        hs.tuples(
            hs.integers(0, 10000), hs.integers(0, 13), hs.integers(0, 32), hs.integers(0, 25),
            hs.integers(0, 61), hs.integers(0, 61), hs.one_of(hs.just(""), _DIGITS),
            hs.sampled_from(["Z", "z", "+01:00", ""]),
        ),
        max_size=8,
    )
)  # fmt: skip
def test_reader_agrees_with_parse_time_on_generated_times(parts):
    read = gotime.reader()  # one reader for all: its minute cache must never leak a wrong answer
    for y, mo, d, h, mi, s, frac, tz in parts:
        text = f"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{'.' + frac if frac else ''}{tz}"
        assert read(text) == gotime.parse_time(text), text
