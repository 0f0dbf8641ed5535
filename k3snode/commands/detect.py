"""``k3snode detect``: the node's external addresses and where they came from."""

from __future__ import annotations

import argparse
import json

from k3snode.cli_settings import load_settings
from k3snode.commands import DISCOVERY_FLAGS
from k3snode.discovery import discover

JSON_HELP = "print JSON: provider, source, public_ipv4, public_ipv6, private_ipv4 (+ notes, error)"
FLAGS = DISCOVERY_FLAGS
EXAMPLES = (
    ("Where this node's public addresses come from:", "k3snode detect"),
    ("On AWS, as JSON, showing each metadata request:", "k3snode detect --provider aws --json -v"),
    (
        "A static address (nothing is discovered for IPv4):",
        "k3snode detect --external-ip 203.0.113.7",
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    found = discover(settings)
    if args.json:
        print(json.dumps(found.to_json(), indent=2))
    else:
        print(describe(found))
    return 0 if found.found else 1


def describe(found) -> str:
    def src(fam: str) -> str:
        s = found.sources.get(fam, "")
        return f"metadata, {found.provider}" if s == "metadata" and found.provider else s

    lines = [f"provider:     {found.provider or 'none recognised'}"]
    lines.append(
        f"public IPv4:  {found.public_ipv4 + ' (' + src('ipv4') + ')' if found.public_ipv4 else '-'}"
    )
    lines.append(
        f"public IPv6:  {found.public_ipv6 + ' (' + src('ipv6') + ')' if found.public_ipv6 else '-'}"
    )
    lines.append(f"private IPv4: {found.private_ipv4 or '-'}")
    lines.extend(f"note: {n}" for n in found.notes)
    if found.error:
        lines.append(f"error: {found.error}")
    if not found.found:
        lines.append(NO_ADDRESS_HINT)
    return "\n".join(lines)


NO_ADDRESS_HINT = (
    "No public address found. If the node has one that is not on an interface, set it with "
    "--external-ip ADDR or [discovery] external_ips; behind NAT with no public address, use "
    'mesh = "tailscale"; to ask HTTPS echo services, set [discovery] echo = true.'
)
