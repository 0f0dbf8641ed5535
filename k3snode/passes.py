"""One pass after discovery, shared by ``k3snode apply`` and the daemon: judge what discovery
found, render and write the K3s config, and restart K3s when what it reads changed.

``judge`` says why a discovery must not be written (the last good state is kept); ``write`` runs
``reconcile.prepare`` + ``commit``; ``restart`` is the calm restart of ``k3s/service.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k3snode.config.model import Settings
    from k3snode.discovery.result import Discovery
    from k3snode.k3s.service import RestartResult
    from k3snode.reconcile import Committed, Prepared

log = logging.getLogger("k3snode")


@dataclass(frozen=True)
class Written:
    path: str
    addresses: tuple[str, ...]
    summary: str  # "added node-external-ip; changed server" or "unchanged"
    committed: Committed
    warnings: tuple[str, ...] = ()
    keys_changed: bool = True  # k3snode's keys differ (not only the file's layout)

    @property
    def changed(self) -> bool:
        """K3s would read something new: a managed key, the token or vpn-auth file, a drop-in.
        A write that only moved lines (the user appended a key below k3snode's block) is not."""
        c = self.committed
        return bool(
            c.secrets_changed or c.stale_cleaned or (c.config_changed and self.keys_changed)
        )


def judge(settings: Settings, found: Discovery, allow_empty: bool = True) -> str | None:
    """Why this discovery must not be written, or None. ``allow_empty``: with mesh "none" a node
    without a public address still gets its config (as ``apply`` does), unless the caller already
    has a last good address to keep."""
    if found.error:
        return found.error
    if not found.found and (settings.mesh != "none" or not allow_empty):
        return "no external address found"
    return None


def prepare(settings: Settings, found: Discovery) -> Prepared:
    from k3snode.reconcile import prepare as _prepare
    from k3snode.reconcile import underlay_ip

    return _prepare(settings, found.external_ips, underlay_ip(settings))


def write(settings: Settings, found: Discovery) -> Written:
    """Render and write; raises SettingsError / ConfigFileError on a user mistake, OSError
    (``locks.LockBusy`` among them) when it cannot write. The whole read-modify-write runs
    under the write lock that ``apply`` and the daemon share."""
    from k3snode import locks
    from k3snode.reconcile import commit

    with locks.writing(settings.paths.state_dir):
        prepared = prepare(settings, found)
        done = commit(settings, prepared)
    plan = prepared.plan
    summary = plan_summary(plan) if done.config_changed else "unchanged"
    return Written(
        plan.path,
        tuple(found.external_ips),
        summary,
        done,
        tuple(plan.warnings),
        keys_changed=keys_changed(plan),
    )


def keys_changed(plan) -> bool:
    """The plan adds, changes or removes one of k3snode's keys."""
    return bool(plan.added or plan.modified or plan.removed)


def restart(settings: Settings) -> RestartResult:
    """Restart K3s calmly if it runs; never start it."""
    from k3snode.k3s.service import Service

    return Service.for_settings(settings).restart_if_running(settings.daemon.restart_timeout)


def plan_summary(plan) -> str:
    parts = []
    for label, keys in (
        ("added", plan.added),
        ("changed", plan.modified),
        ("removed", plan.removed),
    ):
        if keys:
            parts.append(f"{label} {', '.join(keys)}")
    return "; ".join(parts) or "reformatted"
