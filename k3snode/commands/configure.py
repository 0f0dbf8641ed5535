"""``k3snode configure``: check the settings and keep what defines the node (``identity.py``).

Reads settings as every command does (file, k3snode.env, environment, flags), validates them all,
then stores a token or auth key from the environment as a 0600 file and saves the node-defining
values that came from the environment or flags in k3snode.env. Writes no K3s config and restarts
nothing: the daemon picks the settings up at its next start or ``systemctl reload k3snode``.
The installer runs ``K3S_URL=… K3S_TOKEN=… k3snode configure`` (secrets never in argv).
"""

from __future__ import annotations

import argparse
import sys

from k3snode import identity
from k3snode.cli_settings import load_settings
from k3snode.commands import NODE_FLAGS
from k3snode.pipeline import check_local, check_role

# Everything configure may save (identity.SAVED), plus what the checks it runs read.
FLAGS = (*NODE_FLAGS, "state-dir")
ENVIRONMENT = (
    ("K3SNODE_TAILSCALE_AUTH_KEY_FILE", "mesh tailscale: file holding the auth key (saved)"),
)
EXAMPLES = (
    (
        "An agent, as K3s's installer is told (the token is stored 0600, never in argv):",
        "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN=K10example::server:secret k3snode configure",
    ),
    ("The first server of a cluster:", "k3snode configure --role server --cluster-init"),
    ("Is this node configured? (exit 1 and what to do when not):", "k3snode configure --check"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 0 when the node is configured, 1 (and say what to do) when not",
    )


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    check_local(settings)
    check_role(settings)
    if args.check:
        if settings.configured:
            print(f"configured: {settings.role}")
            return 0
        print(settings.not_configured())
        return 1
    try:
        saved = identity.save(settings)
    except identity.SaveError as e:
        print(f"k3snode: error: {e}; nothing saved", file=sys.stderr)
        return 1
    if saved is None:
        print(
            "nothing to save: no node-defining setting in the environment or flags "
            "(K3S_URL, K3S_TOKEN, K3S_TOKEN_FILE, K3S_NODE_NAME, K3SNODE_ROLE, K3SNODE_MESH, "
            "K3SNODE_TAILSCALE_AUTH_KEY, --role, --server, …)",
            file=sys.stderr,
        )
    else:
        print(saved.describe())
    if not settings.configured:
        print(f"k3snode: {settings.not_configured()}", file=sys.stderr)
    return 0
