"""``k3snode apply``: discover, render and write the K3s config, saying what changed."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from k3snode import identity, pipeline
from k3snode.cli_settings import load_settings
from k3snode.commands import DISCOVERY_FLAGS, NODE_FLAGS
from k3snode.commands.detect import NO_ADDRESS_HINT
from k3snode.k3s import ordering, overrides
from k3snode.k3s.service import unit_name
from k3snode.logs import duration
from k3snode.mesh.tailscale.types import TailscaleError
from k3snode.progress import Step

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)


FLAGS = (*NODE_FLAGS, "k3s-unit", *DISCOVERY_FLAGS, "state-dir")
EXAMPLES = (
    (
        "First server of a cluster (embedded etcd), addresses discovered:",
        "k3snode apply --role server --cluster-init",
    ),
    (
        "An agent, with K3s installer's variables; see what would change first:",
        "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN=K10example::server:secret k3snode apply --dry-run",
    ),
    (
        "An agent behind NAT on Tailscale, written as a drop-in:",
        "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN_FILE=/etc/k3snode/token "
        "K3SNODE_TAILSCALE_AUTH_KEY_FILE=/etc/k3snode/tailscale.key k3snode apply --mesh tailscale "
        "--k3s-config /etc/rancher/k3s/config.yaml.d/90-k3snode.yaml",
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--no-restart", action="store_true", help="never restart K3s")


def discover_for(settings: Settings) -> tuple[list[str], list[str]]:
    """The addresses to write as node-external-ip, and notes worth telling the user."""

    found = pipeline.discover(settings)
    notes = list(found.notes)
    if found.error:
        notes.append(found.error)
    if not found.found:
        notes.append(NO_ADDRESS_HINT)
    return found.external_ips, notes


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    pipeline.check_local(settings)
    pipeline.check_role(settings)
    if not args.dry_run:  # keep what this node was told, before anything can fail
        try:
            saved = identity.save(settings)
        except identity.SaveError as e:
            log.error("error: %s; nothing written", e)
            return 1
        if saved is not None and saved.changed:
            print(saved.describe())
    if not _mesh_up(settings, args.dry_run):
        return 1
    found = pipeline.discover(settings)
    for note in found.notes:
        log.info("%s", note)
    refused = pipeline.judge(settings, found)
    if refused:
        log.error("%s; nothing written", refused)
        if not found.error:
            log.info("%s", NO_ADDRESS_HINT)
        return 1
    if args.dry_run:
        planned = pipeline.plan(settings, found.external_ips)
        plan = planned.file
        for w in plan.warnings:
            log.warning("warning: %s", w)
        print(
            f"would write {plan.path}: {planned.summary}"
            if plan.changed
            else f"unchanged: {plan.path}"
        )
        return 0 if _effective_ok(settings) else 1
    done = pipeline.write(settings, found)
    for w in done.planned.file.warnings:
        log.warning("warning: %s", w)
    if done.config_changed:
        print(f"written {done.path}: {done.summary}")
    else:
        print(f"unchanged: {done.path}")
    for path in done.secrets_changed:
        print(f"written {path} (0600)")
    for path in done.stale_cleaned:
        print(f"removed k3snode's keys from {path} (no longer written there)")

    try:
        dropin = ordering.ensure(settings)
    except OSError as e:
        path = ordering.dropin_path(settings.k3s.unit)
        log.warning("warning: cannot write %s (%s): %s", path, e.strerror or e, ordering.WHY)
    else:
        if dropin:
            print(f"written {dropin}: {settings.k3s.unit}.service starts after k3snode")
    rc = 0 if _effective_ok(settings) else 1
    if not done.restart_needed or args.no_restart:
        return rc

    timeout = settings.daemon.restart_timeout
    with Step(log, f"restarting {unit_name(settings)} (up to {timeout:g} s)", report_end=False):
        result = pipeline.restart(settings)
    if result.outcome in ("not-running", "not-installed"):
        print(f"{result.detail}: K3s reads the new config when it starts")
        return rc
    if result.restarted:
        print(f"restarted {result.unit} ({duration(result.duration)})")
        return rc
    log.error("restart of %s: %s", result.unit, result.detail)
    return 1


def _effective_ok(settings: Settings) -> bool:
    """Say what the other files K3s reads do to k3snode's keys (``k3s/effective.py``); False when
    K3s would not read k3snode's file or would refuse one of its files."""

    _view, report = overrides.for_settings(settings)
    for level, message in report.lines():
        if level == "error":
            log.error("error: %s", message)
        else:
            log.warning("warning: %s", message)
    return not report.errors


def _mesh_up(settings: Settings, dry_run: bool) -> bool:
    """Bring the mesh up before discovery (not on a dry run); False after logging why it failed."""
    if settings.mesh != "tailscale":
        return True
    if dry_run:
        log.info("dry run: Tailscale is not brought up; its current addresses are used")
        return True

    try:
        pipeline.mesh_up(settings)
    except TailscaleError as e:
        log.error("error: %s; nothing written", e)
        return False
    return True
