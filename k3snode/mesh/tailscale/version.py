"""The Tailscale version floor: K3s's flannel backend runs ``tailscale set`` (new in Tailscale 1.34,
``cmd/tailscale/cli/set.go`` 19b55865); k3snode's ``up --auth-key=file:`` needs 1.22 (``--auth-key``,
94409db7; ``file:`` since 1.16, b822b5c7) and ``--timeout`` 1.26."""

from __future__ import annotations

import logging
import re
import subprocess

from k3snode.mesh.tailscale.status import STATUS_TIMEOUT, run_cli
from k3snode.mesh.tailscale.types import TailscaleError

log = logging.getLogger(__name__)

MIN_VERSION = (1, 34)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first line of ``tailscale version`` (``1.90.3``, ``1.90.3-t0123abc-g…``) → (1, 90, 3)."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    m = _VERSION.match(first)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version() -> tuple[tuple[int, int, int] | None, str]:
    """(parsed, as printed) from ``tailscale version``; (None, "") when it cannot be asked."""
    try:
        out = run_cli(["version"], STATUS_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None, ""
    if out.returncode != 0:
        return None, ""
    shown = out.stdout.strip().splitlines()[0].strip() if out.stdout.strip() else ""
    return parse_version(out.stdout), shown


def too_old(v: tuple[int, int, int], shown: str) -> str | None:
    """The one-line complaint about a Tailscale older than ``MIN_VERSION``, or None."""
    if v[:2] >= MIN_VERSION:
        return None
    return (
        f"Tailscale {shown or '.'.join(map(str, v))} is too old: K3s's Tailscale integration needs "
        f"{MIN_VERSION[0]}.{MIN_VERSION[1]} or later (its flannel backend runs `tailscale set`, "
        "new in 1.34; k3snode's `tailscale up --auth-key=file:` needs 1.22); upgrade Tailscale"
    )


def check_version() -> None:
    """Raise TailscaleError (kind "too-old") for a Tailscale older than ``MIN_VERSION``."""
    v, shown = version()
    if v is None:
        if shown:
            log.warning("tailscale: cannot read its version from %r; going on", shown)
        return
    problem = too_old(v, shown)
    if problem:
        raise TailscaleError(problem, "too-old")
