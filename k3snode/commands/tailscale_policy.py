"""``k3snode tailscale-policy``: print the tailnet policy snippet for the cluster (nothing else)."""

from __future__ import annotations

import argparse
import json

from k3snode.cli_settings import load_settings
from k3snode.mesh.tailscale import policy

FLAGS = ()
EXAMPLES = (
    ("The snippet to paste into the tailnet policy file:", "k3snode tailscale-policy"),
    ("As plain JSON:", "K3SNODE_TAILSCALE_POD_CIDRS=10.42.0.0/16 k3snode tailscale-policy --json"),
)
ENVIRONMENT = (
    ("K3SNODE_TAILSCALE_POD_CIDRS", "the cluster's pod CIDR(s) ([tailscale] pod_cidrs)"),
    ("K3SNODE_TAILSCALE_TAG", "the tailnet tag of the cluster's nodes ([tailscale] tag)"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="plain JSON without the comment header")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.json:
        print(json.dumps(policy.policy(settings), indent=2))
    else:
        print(policy.render(settings), end="")
    return 0
