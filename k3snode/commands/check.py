"""``k3snode check``: preflight checks; exit 1 when any finds an error.

Each topic's checks live with the code they concern and are listed in ``PREFLIGHTS`` as
``module:function``; each function takes the Settings and returns a list of ``Finding``.
"""

from __future__ import annotations

import argparse
import importlib
import json

from k3snode.commands import DISCOVERY_FLAGS, NODE_FLAGS

PREFLIGHTS: list[str] = [
    "k3snode.preflight:settings_and_config",
    "k3snode.k3s.effective:preflight",
    "k3snode.k3s.ordering:preflight",
    "k3snode.mesh.tailscale_health:preflight",
    "k3snode.mesh.wg.preflight:wireguard_native",
    "k3snode.mesh.underlay.checks:preflight",
    "k3snode.discovery.preflight:findings",
    "k3snode.registration.preflight:findings",
]


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
    from k3snode.cli import load_settings

    settings = load_settings(args)
    findings = []
    for ref in PREFLIGHTS:
        module, func = ref.split(":")
        findings.extend(getattr(importlib.import_module(module), func)(settings))
    if args.json:
        print(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        for f in findings:
            print(f"{f.level:8} {f.topic:10} {f.message}")
    return 1 if any(f.level == "error" for f in findings) else 0
