"""``k3snode check``: preflight checks; exit 1 when any finds an error.

Each topic's checks live with the code they concern and are listed in ``PREFLIGHTS``, in the
order they are printed; each takes the Settings and returns a list of ``Finding``. This module is
imported only when ``k3snode check`` runs, so importing every topic here costs no other command.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Callable

from k3snode import preflight
from k3snode.cli_settings import load_settings
from k3snode.commands import DISCOVERY_FLAGS, NODE_FLAGS
from k3snode.discovery import preflight as discovery_preflight
from k3snode.health.checks import Finding
from k3snode.k3s import ordering, overrides
from k3snode.mesh.tailscale import health as tailscale_health
from k3snode.mesh.underlay import checks as underlay_checks
from k3snode.mesh.wg import preflight as wg_preflight
from k3snode.registration import preflight as registration_preflight

if TYPE_CHECKING:
    from k3snode.config.model import Settings

Preflight = Callable[["Settings"], "list[Finding]"]

PREFLIGHTS: tuple[Preflight, ...] = (
    preflight.settings_and_config,
    overrides.preflight,
    ordering.preflight,
    tailscale_health.preflight,
    wg_preflight.wireguard_native,
    underlay_checks.preflight,
    discovery_preflight.findings,
    registration_preflight.findings,
)


JSON_HELP = "print the findings as JSON: a list of {level, topic, message}"
FLAGS = (*NODE_FLAGS, "k3s-unit", *DISCOVERY_FLAGS, "state-dir")
EXAMPLES = (
    ("Before the first start of a server:", "k3snode check --role server --cluster-init"),
    (
        "An agent on Tailscale, as JSON:",
        "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN_FILE=/etc/k3snode/token "
        "K3SNODE_TAILSCALE_AUTH_KEY_FILE=/etc/k3snode/tailscale.key "
        "k3snode check --mesh tailscale --json",
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    findings = []
    for check in PREFLIGHTS:
        findings.extend(check(settings))
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for f in findings:
            print(f"{f.level:8} {f.topic:10} {f.message}")
    return 1 if any(f.level == "error" for f in findings) else 0
