"""K3s starts after k3snode, whatever K3s's unit is called.

``k3snode.service`` says ``Before=k3s.service k3s-agent.service``: the units K3s's installer
creates. With ``INSTALL_K3S_NAME=NAME`` the installer names the unit ``k3s-NAME`` instead, which a
shipped unit file cannot know. For such a unit (``[k3s] unit``), ``k3snode apply`` writes a
drop-in of its own, ``/etc/systemd/system/<unit>.service.d/10-k3snode.conf``, with
``After=k3snode.service`` — the same ordering seen from K3s's side — and reloads systemd.
``k3snode check`` says when it is missing. The drop-in is k3snode's file; K3s's unit is never
edited. (The daemon cannot write it: its unit makes /etc read-only.)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING

from k3snode import fileio, systemd
from k3snode.health.checks import Finding

if TYPE_CHECKING:
    from k3snode.config.model import Settings

SHIPPED_BEFORE = ("k3s", "k3s-agent")  # k3snode.service's Before=
DROPIN_NAME = "10-k3snode.conf"
CONTENT = """\
# Written by k3snode: start K3s after k3snode has written its config. k3snode.service orders
# itself before k3s.service and k3s-agent.service only; this unit has another name.
[Unit]
After=k3snode.service
"""


WHY = "K3s may start before k3snode has written its config"


def _unit(settings: Settings) -> str:
    return (
        settings.k3s.unit[: -len(".service")]
        if settings.k3s.unit.endswith(".service")
        else settings.k3s.unit
    )


def dropin_path(unit: str, root: str = "/") -> str:
    unit = unit[: -len(".service")] if unit.endswith(".service") else unit
    return os.path.join(root, "etc/systemd/system", f"{unit}.service.d", DROPIN_NAME)


def needed(settings: Settings) -> bool:
    return _unit(settings) not in SHIPPED_BEFORE


def ensure(settings: Settings, root: str = "/") -> str | None:
    """Write the drop-in for a custom-named K3s unit; the path when it changed, else None."""
    if not needed(settings):
        return None
    path = dropin_path(_unit(settings), root)
    if not fileio.atomic_write(path, CONTENT.encode(), mode=0o644).changed:
        return None
    if root == "/" and os.path.isdir(systemd.BOOTED):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            systemd.systemctl(["daemon-reload"], timeout=60)
    return path


def preflight(settings: Settings, root: str = "/") -> list[Finding]:
    unit = _unit(settings)
    if not needed(settings):
        return [
            Finding(
                "ok", "k3s", f"{unit}.service is ordered after k3snode (k3snode.service Before=)"
            )
        ]
    path = dropin_path(unit, root)
    if (fileio.read_bytes(path) or b"").decode("utf-8", "replace") == CONTENT:
        return [Finding("ok", "k3s", f"{unit}.service is ordered after k3snode ({path})")]
    return [
        Finding(
            "warning",
            "k3s",
            f"{unit}.service may start before k3snode has written its config: {path} is "
            "missing; `k3snode apply` writes it (or `systemctl edit "
            f"{unit}` and add After=k3snode.service under [Unit])",
        )
    ]
