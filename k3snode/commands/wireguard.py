"""``k3snode wireguard pubkey|show|up``: the underlay's key, its peers' health, one pass (or keep
it up with ``--watch``). A usage mistake exits 2 (before anything is touched); a failure of the
underlay itself (no key, no WireGuard, an interface that cannot be made) exits 1."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from k3snode.cli_settings import load_settings
from k3snode.errors import UsageError
from k3snode.mesh.underlay import checks
from k3snode.mesh.underlay.keeper import Keeper, UnderlayError

log = logging.getLogger(__name__)

FLAGS = ("role",)
EXAMPLES = (
    (
        "This server's underlay public key, for the other servers' [[underlay.peers]]:",
        "k3snode wireguard pubkey",
    ),
    ("The underlay's peers and their handshakes:", "k3snode wireguard show"),
)
ENVIRONMENT = (
    ("K3SNODE_UNDERLAY_ENABLED", "turn the underlay on (true/false/1/0)"),
    ("K3SNODE_UNDERLAY_ADDRESS", "this node's underlay address, e.g. 10.99.0.1/24"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("pubkey", "show", "up"),
                   help="pubkey: print this node's underlay public key (creating the key if "
                   "needed); show: the underlay's peers and their health; up: configure the "
                   "underlay now")  # fmt: skip
    p.add_argument("--json", action="store_true", help="show: print JSON")
    p.add_argument("--watch", action="store_true",
                   help="up: keep the underlay configured, a pass every --interval seconds")  # fmt: skip
    p.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                   help="up --watch: seconds between passes (default 2)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if not settings.underlay.enabled:  # nothing to show, and no key is made for nothing
        where = settings.where("underlay", "enabled")
        raise UsageError(
            f"the underlay is not enabled ({where} is false); set [underlay] enabled = true "
            "and address to use it"
        )
    if args.action == "up" and args.interval <= 0:
        raise UsageError(f"--interval must be positive (got {args.interval:g})")
    u = Keeper(settings)
    try:
        if args.action == "pubkey":
            print(u.private_key()[1])
            return 0
        if args.action == "show":
            return _show(settings, args.json)
        result = u.run_once()
        if not args.watch:
            print("\n".join(result.changes) if result.changed else "unchanged")
            return 0
        log.info("underlay: %s is up; a pass every %gs", settings.underlay.interface, args.interval)
        while True:
            time.sleep(args.interval)
            u.run_once()
    except UnderlayError as e:  # the underlay failed, not the user: exit 1
        print(f"k3snode: error: {e}", file=sys.stderr)
        return 1


def _show(settings, as_json: bool) -> int:
    obs = checks.observe(settings)
    now = time.time()
    if as_json:
        print(json.dumps({
            "ok": obs.ok, "detail": obs.detail, "facts": obs.facts,
            "peers": [{**p.__dict__, "handshake_age": None if p.last_handshake is None
                       else round(now - p.last_handshake, 1)} for p in obs.peers],
        }, indent=2))  # fmt: skip
        return 0 if obs.ok else 1
    print(obs.detail)
    for p in obs.peers:
        hs = "never" if p.last_handshake is None else f"{now - p.last_handshake:.0f}s ago"
        state = "STALE" if p.stale else "ok"
        print(f"  {state:5} {p.name or '-':16} {p.public_key}  endpoint {p.endpoint or '-'}  "
              f"handshake {hs}  rx {p.rx_bytes} tx {p.tx_bytes}")  # fmt: skip
    return 0 if obs.ok else 1
