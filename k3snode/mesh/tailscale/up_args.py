"""What ``tailscale up`` is told: the key only as ``file:PATH``, the node's identity (hostname, extra
args — which K3s's own ``tailscale up`` gets too, through ``vpn-auth``'s ``extraArgs``), and the
settings K3s's flannel backend made, carried over so a login does not drop them."""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from typing import TYPE_CHECKING

from k3snode.mesh.tailscale.status import STATUS_TIMEOUT, run_cli, scrub
from k3snode.secret import Secret

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)


def identity_args(settings: Settings) -> list[str]:
    """What k3snode tells ``tailscale up`` beyond the key: hostname and extra args (the login
    server travels separately, as ``vpn-auth``'s ``controlServerURL``)."""
    ts = settings.tailscale
    args = [f"--hostname={ts.hostname}"] if ts.hostname else []
    return [*args, *ts.extra_args]


def k3s_prefs(secret: Secret | None = None) -> list[str]:
    """The settings K3s's flannel backend makes (``tailscale set --accept-routes
    --advertise-routes=…``) as ``tailscale up`` flags, read from ``tailscale debug prefs``
    (``RouteAll``, ``AdvertiseRoutes``); [] when unset or unreadable."""
    try:
        out = run_cli(["debug", "prefs"], STATUS_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("tailscale: cannot read its settings (debug prefs): %s", e)
        return []
    if out.returncode != 0:
        why = scrub((out.stderr or out.stdout).strip(), secret)
        log.warning("tailscale: cannot read its settings (debug prefs): %s", why[:200])
        return []
    try:
        prefs = json.loads(out.stdout)
    except ValueError:
        log.warning("tailscale: debug prefs gave an unreadable answer")
        return []
    if not isinstance(prefs, dict):
        return []
    args = ["--accept-routes"] if prefs.get("RouteAll") is True else []
    routes = []
    for r in prefs.get("AdvertiseRoutes") or []:
        try:
            routes.append(str(ipaddress.ip_network(str(r))))
        except ValueError:
            continue
    if routes:
        args.append("--advertise-routes=" + ",".join(routes))
    return args


def login_args(settings: Settings, carried: list[str]) -> list[str]:
    """``tailscale up`` for a node that must log in: the key only as ``file:PATH``."""
    ts = settings.tailscale
    args = ["up", "--reset", f"--auth-key=file:{ts.auth_key_file}", f"--timeout={int(ts.timeout)}s"]
    if ts.control_server_url:
        args.append(f"--login-server={ts.control_server_url}")
    hostname = [f"--hostname={ts.hostname}"] if ts.hostname else []
    return [*args, *hostname, *carried, *ts.extra_args]
