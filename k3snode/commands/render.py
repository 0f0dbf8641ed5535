"""``k3snode render``: print the K3s config that would be written, changing nothing."""

from __future__ import annotations

import argparse
import re
import sys

from k3snode import pipeline
from k3snode.cli_settings import load_settings
from k3snode.commands import DISCOVERY_FLAGS, NODE_FLAGS
from k3snode.commands.apply import discover_for

# Inline secrets a user may have written into their own config.yaml: never printed.
_SECRET_LINE = re.compile(
    r"^(?P<key>(token|agent-token|vpn-auth|etcd-s3-secret-key|etcd-s3-access-key|datastore-endpoint)"
    r"\s*:)\s*\S.*$"
)


FLAGS = (*NODE_FLAGS, *DISCOVERY_FLAGS, "state-dir")
EXAMPLES = (
    ("What a first server would write:", "k3snode render --role server --cluster-init"),
    (
        "What an agent would write (the token is never printed):",
        "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN=K10example::server:secret k3snode render",
    ),
)


def redact(text: str) -> str:
    return "\n".join(
        _SECRET_LINE.sub(lambda m: f"{m.group('key')} '********'", line)
        for line in text.split("\n")
    )


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    pipeline.check_local(settings)
    external, notes = discover_for(settings)
    for note in notes:
        print(f"k3snode: {note}", file=sys.stderr)
    planned = pipeline.plan(settings, external)
    sys.stdout.write(redact(planned.file.new_text))
    for w in planned.file.warnings:
        print(f"k3snode: warning: {w}", file=sys.stderr)
    return 0
