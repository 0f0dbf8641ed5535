"""What the daemon tells: the one-line STATUS= (also ``k3snode status``'s summary and the journal's
"ready:" line), the status file's content, and journal lines on the edges of health checks (when
one turns failing after its grace period, and when it is ok again)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from k3snode import __version__
from k3snode.config.model import Settings
from k3snode.daemon.tracker import Addresses
from k3snode.discovery.result import Discovery
from k3snode.health.checks import Observation
from k3snode.health.model import Health
from k3snode.health.statusfile import peer_rows
from k3snode.logs import Conditions
from k3snode.record import record

log = logging.getLogger(__name__)


@record
class Facts:
    """What the loop knows beyond the health snapshot, for one report."""

    settings: Settings
    addresses: Addresses
    k3s_state: str  # "k3s.service active (running)", "" before the first look
    not_configured: str | None  # the not-configured line, when that is all there is to say
    registration: Any  # the registration keeper, or None
    started_wall: float
    ready: bool
    last_restart: dict[str, Any] | None
    restart_pending: bool
    observed: tuple[Observation, ...]
    health_port: int


def status_line(facts: Facts, snap: Health) -> str:
    s = facts.settings
    if facts.not_configured is not None:
        return facts.not_configured
    found, current = facts.addresses.found, facts.addresses.current
    if found is not None and current:
        addrs = found.summary()
    elif current == ():
        addrs = "no external address"
    else:
        addrs = "no address yet"
    parts = [f"{s.role}, mesh {s.mesh}: {addrs}"]
    if facts.k3s_state:
        parts.append(facts.k3s_state)
    change = facts.addresses.last_change
    if change:
        parts.append("last change " + time.strftime("%H:%M:%S", time.gmtime(change["time"])))
    if facts.registration is not None:
        last = facts.registration.last
        state = "pending" if last is None else "published" if last.ok else "update failing"
        parts.append(f"{s.registration.name} {state}")
    if not snap.ok:
        bad = [f"{c.check}: {c.detail}" for c in snap.checks if c.state == "failing"]
        parts.insert(0, "degraded (" + "; ".join(bad) + ")")
    return "; ".join(parts)


def status(facts: Facts, snap: Health, line: str, wall: float) -> dict[str, Any]:
    """The status file (``k3snode status``)."""
    s, a = facts.settings, facts.addresses
    return {
        "version": __version__,
        "pid": os.getpid(),
        "started": facts.started_wall,
        "ready": facts.ready,
        "role": s.role,
        "mesh": s.mesh,
        "configured": s.configured,
        "settings_file": s.file,
        "env_file": s.env_file,
        "k3s_config": s.k3s.config,
        "k3s_unit": f"{s.k3s.unit}.service",
        "k3s_state": facts.k3s_state,
        "addresses": [{"address": x, "family": f, "source": src} for x, f, src in a.rows()],
        "provider": a.found.provider if a.found is not None else None,
        "candidate": list(a.candidate) if a.candidate is not None else None,
        "last_change": a.last_change,
        "last_restart": facts.last_restart,
        "restart_pending": facts.restart_pending,
        "health": snap.to_json(),
        "peers": peer_rows(list(facts.observed), wall),
        "summary": line,
        "health_port": facts.health_port,
        "registration": registration_status(facts.registration),
    }


def registration_status(keeper: Any) -> dict[str, Any] | None:
    return keeper.status() if keeper is not None else None


class CheckEdges:
    """One journal line when a check turns failing (after its grace period) and one when it is
    ok again; nothing while it stays as it is. -v shows every change of state or detail."""

    def __init__(self, conditions: Conditions) -> None:
        self._conditions = conditions
        self._states: dict[str, str] = {}  # check -> state last logged about

    def log(self, snap: Health) -> None:
        cond = self._conditions
        for c in snap.checks:
            before = self._states.get(c.check)
            key = f"check:{c.check}"
            if c.state == "failing":
                cond.bad(key, cond.active(key) or f"{c.check}: {c.detail}")
            elif c.state == "ok":
                cond.good(key, f"{c.check}: ok again ({c.detail})")
            if before != c.state:
                log.debug("check %s: %s (%s)", c.check, c.state, c.detail)
            self._states[c.check] = c.state


def settings_read(settings: Settings) -> str:
    read = [p for p in (settings.file, settings.env_file) if p and os.path.exists(p)]
    return "read " + (", ".join(read) if read else "from the environment and flags")


def discovery_facts(found: Discovery) -> dict[str, str]:
    facts = {}
    if found.provider:
        facts["provider"] = found.provider
    for fam, addr in (("ipv4", found.public_ipv4), ("ipv6", found.public_ipv6)):
        if addr:
            facts[fam] = f"{addr} ({found.sources.get(fam, '?')})"
    return facts
