"""How k3snode talks to the operator through its log (stderr, the journal under systemd).

- Default level: what changed and why. ``-v``: also what was asked and answered (DEBUG).
- Third-party libraries (pyroute2, urllib3, asyncio) log at WARNING or above only, whatever
  ``-v`` says; their messages about normal things (pyroute2's tc subsystem probe, its bind retries)
  are dropped, and the ones that matter are said in k3snode's words by the code that knows what
  they mean for the node (``LibraryFilter``).
- Conditions are logged on their edges (``Conditions``): once when they start, once when they end
  (with how long and how often they were seen), never on every check.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from k3snode.record import record

FORMAT = "k3snode: %(message)s"
THIRD_PARTY = ("pyroute2", "urllib3", "asyncio", "prometheus_client")

# pyroute2 messages that are either normal or said better by k3snode itself:
# - the tc module probes /proc/net/psched at import (absent in containers; k3snode uses no tc);
# - a missing generic-netlink family ("wireguard") is reported once by the WireGuard checks,
#   with what it means for the node (k3snode.mesh.wg.preflight.KernelCheck).
_DROPPED = (
    "/proc/net/psched",
    "the tc subsystem functionality is limited",
    "Generic netlink protocol",
    "Please check if the protocol module is loaded",
)


class LibraryFilter(logging.Filter):
    """On k3snode's handler: libraries' records below WARNING and known noise are dropped; what
    remains is prefixed with the library's name. Some pyroute2 versions log through the root
    logger (``logging.error``), so records are recognised by their source path as well."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "k3snode" or record.name.startswith("k3snode."):
            return True
        lib = _library(record)
        if lib is None:
            return record.levelno >= logging.WARNING
        if record.levelno < logging.WARNING:
            return False
        text = record.getMessage()
        if any(d in text for d in _DROPPED):
            return False
        record.msg, record.args = f"{lib}: {text}", ()
        return True


def _library(record: logging.LogRecord) -> str | None:
    for lib in THIRD_PARTY:
        if record.name == lib or record.name.startswith(lib + "."):
            return lib
        if f"/{lib}/" in (record.pathname or ""):
            return lib
    return None


def setup(verbose: int = 0, stream=None) -> None:
    """Configure logging for a k3snode process (idempotent: replaces k3snode's own handler)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_k3snode", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(LibraryFilter())
    handler._k3snode = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("k3snode").setLevel(logging.DEBUG if verbose > 0 else logging.INFO)
    for lib in THIRD_PARTY:
        logging.getLogger(lib).setLevel(logging.WARNING)


_said: set[str] = set()


def said(text: str) -> None:
    """Record that a component has already explained ``text`` to the operator; a condition whose
    text contains it is then opened at DEBUG instead of repeating the explanation."""
    _said.add(text)


def already_said(text: str) -> bool:
    return any(s in text for s in _said)


@record(frozen=False)
class _Condition:
    """A condition being reported: its text, since when, and how often it repeated."""

    text: str
    since: float
    count: int = 1


class Conditions:
    """Edge-triggered conditions: ``bad(key, text)`` logs when a condition starts or says something
    new, and only counts an identical repeat; ``good(key, text)`` logs once when it ends."""

    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._clock = clock
        self._open: dict[str, _Condition] = {}

    def active(self, key: str) -> str | None:
        c = self._open.get(key)
        return c.text if c is not None else None

    def bad(self, key: str, text: str, level: int = logging.WARNING) -> bool:
        """Report condition ``key``; True when this call logged (a start or a new text)."""
        c = self._open.get(key)
        if c is not None and c.text == text:
            c.count += 1
            self._log.debug("%s (still, seen %d times)", text, c.count)
            return False
        if c is None:
            self._open[key] = _Condition(text, self._clock())
        else:
            self._open[key] = _Condition(text, c.since, c.count + 1)
        self._log.log(logging.DEBUG if already_said(text) else level, "%s", text)
        return True

    def good(self, key: str, text: str | None = None) -> bool:
        """End condition ``key`` if it is open; True when this call logged."""
        c = self._open.pop(key, None)
        if c is None:
            return False
        took = self._clock() - c.since
        times = f", seen {c.count} times" if c.count > 1 else ""
        self._log.info("%s (after %s%s)", text or f"{key}: ok again", duration(took), times)
        return True


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 5 s``, ``2 h 4 min``: for people."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
