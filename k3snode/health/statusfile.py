"""The status file (``<run_dir>/status.json``, 0644, no secrets): what ``k3snode status`` and
``k3snode reload`` read from a running daemon."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from k3snode import fileio
from k3snode.health.checks import Observation


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
