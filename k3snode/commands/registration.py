"""``k3snode registration show|publish|withdraw``: this server's records in the registration name.

``show`` prints the settings, what this server published last and what the DNS server answers;
``publish`` discovers the addresses and publishes them once (what the daemon does on a change);
``withdraw`` removes exactly the records this server published (before it leaves the cluster;
``prepare-image`` does it too). Exit 1 when the update failed, 2 for a settings mistake.
"""

from __future__ import annotations

import argparse
import sys

from k3snode.cli_settings import load_settings
from k3snode.commands import DISCOVERY_FLAGS
from k3snode.errors import UsageError
from k3snode.pipeline import discover as external_addresses
from k3snode.registration import RegistrationError, load, publish, published, wanted, withdraw

ACTIONS = ("show", "publish", "withdraw")
FLAGS = ("role", *DISCOVERY_FLAGS, "state-dir")
ENVIRONMENT = (
    ("K3SNODE_REGISTRATION_NAME", "the cluster's registration DNS name ([registration] name)"),
    ("K3SNODE_REGISTRATION_SERVER", "the DNS server taking RFC 2136 updates, host[:port]"),
    ("K3SNODE_REGISTRATION_KEY_FILE", "TSIG key file, mode 0600 ([registration] key_file)"),
)
EXAMPLES = (
    ("What this server published, and what the DNS server answers for the name:",
     "k3snode registration show"),
    ("Take this server's records out of the name before it leaves the cluster:",
     "k3snode registration withdraw"),
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=ACTIONS, help="show, publish or withdraw this server's records"
    )


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    reg = settings.registration
    if args.action == "withdraw":
        return _withdraw(settings)
    if not reg.name:
        raise UsageError("registration: no registration name set ([registration] name)")
    if args.action == "show":
        return _show(settings)
    if settings.role != "server":
        raise UsageError(
            f"registration publish: this node is an agent; only servers publish {reg.name}"
        )
    return _publish(settings)


def _withdraw(settings) -> int:

    out = withdraw(settings)
    if not out.ok:
        print(f"k3snode: {out.detail}; nothing withdrawn", file=sys.stderr)
        return 1
    print(out.detail)
    return 0


def _publish(settings) -> int:

    found = external_addresses(settings)
    addrs = wanted(settings, found.external_ips)
    if not addrs and settings.registration.publish != "underlay":
        why = found.error or "no external address found"
        print(f"k3snode: registration: {why}; nothing published", file=sys.stderr)
        return 1
    out = publish(settings, addrs)
    if not out.ok:
        print(f"k3snode: {out.detail}", file=sys.stderr)
        return 1
    print(out.detail)
    return 0


def _show(settings) -> int:

    reg = settings.registration
    rec = published.load(published.path(settings.paths.state_dir))
    print(f"name:       {reg.name}")
    print(f"server:     {reg.server or '-'} (backend {reg.backend})")
    print(f"zone:       {reg.zone or '(asked from the server)'}")
    mine = ", ".join(rec.addresses) if rec is not None and rec.name == reg.name else "-"
    print(f"this node:  {mine}")
    if settings.role != "server":
        print("role:       agent (publishes nothing)")
    try:
        answer = load(reg).lookup()
    except RegistrationError as e:
        print(f"k3snode: {e}", file=sys.stderr)
        return 1
    print(f"DNS holds:  {', '.join(answer) or 'nothing'}")
    return 0
