"""Go's ``time.Time`` as JSON (RFC 3339 with up to nanoseconds, ``Z`` or an offset; the zero time
``0001-01-01T00:00:00Z`` for "never") → unix time, without ``datetime``: a status of thousands of
peers carries two times each.

``parse_time`` reads any valid one; ``reader()`` makes the fast path for a whole status — the form
tailscaled writes (``…THH:MM:SS[.frac]Z``) read by slicing, each date-hour-minute converted once.
"""

from __future__ import annotations

import re
from typing import Any, Callable

ZERO = "0001-01-01T00:00:00Z"
_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil:
    integer arithmetic, a fraction of datetime's cost)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _valid(y: int, mo: int, d: int, h: int, mi: int) -> bool:
    return y > 1 and 1 <= mo <= 12 and 1 <= d <= _month_days(y, mo) and h <= 23 and mi <= 59


def parse_time(value: Any) -> float | None:
    """Go's RFC 3339 ``time.Time`` JSON → unix time; the zero time and anything else → None."""
    if not isinstance(value, str) or not value or value == ZERO:
        return None
    m = _TIME.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not _valid(y, mo, d, h, mi) or s > 59:
        return None
    t = float(_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s)
    frac = m.group(7)
    if frac:
        t += int(frac) / 10 ** len(frac)
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def _minute(text: str) -> float | None:
    """``YYYY-MM-DDTHH:MM`` (UTC) → unix time, by slicing; None when it is not a valid one."""
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16]
    if (
        len(text) != 16
        or text[4] != "-"
        or text[7] != "-"
        or text[10] != "T"
        or text[13] != ":"
        or not (digits.isascii() and digits.isdigit())
    ):
        return None
    y, mo, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    h, mi = int(text[11:13]), int(text[14:16])
    if not _valid(y, mo, d, h, mi):
        return None
    return float(_days(y, mo, d) * 86400 + h * 3600 + mi * 60)


def reader() -> Callable[[Any], float | None]:
    """``parse_time`` for the many times of one status (a closure: cheaper to call than an
    object). Each ``YYYY-MM-DDTHH:MM`` prefix is converted once and remembered for the reader's
    life (one parse), so peers that handshook in the same minute cost a dict lookup."""
    minutes: dict[str, float | None] = {}

    def read(value: Any) -> float | None:
        if value == ZERO or value is None:
            return None
        if type(value) is not str or len(value) < 20 or value[-1] != "Z" or value[16] != ":":
            return parse_time(value)
        seconds = value[17:-1]  # "SS" or "SS.fraction", ASCII digits only
        if not (
            seconds.isascii()
            and seconds[:2].isdigit()
            and (len(seconds) == 2 or (seconds[2] == "." and seconds[3:].isdigit()))
        ):
            return parse_time(value)
        minute = value[:16]
        base = minutes.get(minute, -1.0)
        if base == -1.0:
            base = minutes[minute] = _minute(minute)
        sec = float(seconds)
        return None if base is None or sec >= 60 else base + sec

    return read
