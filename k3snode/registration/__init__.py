"""The cluster's registration name: servers keep their own addresses in its A/AAAA records.

Agents join by ``server: https://<name>:6443`` and find the cluster again after a server moved.
Each server publishes only its own records: an update removes exactly the addresses this server
published last (``published.py``) and adds the current ones, in one RFC 2136 update
(``rfc2136.py``) or through a plugin (``backend.py``). The daemon runs updates in a worker, with
backoff, before it asks K3s to restart (``keeper.py``); ``k3snode registration`` does the same
by hand, and withdraws the records when a server leaves.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

from k3snode import addresses as addr_mod
from k3snode.record import record, replace
from k3snode.registration import published
from k3snode.registration.backend import Backend, RegistrationError, load

if TYPE_CHECKING:
    from k3snode.config.model import Settings

log = logging.getLogger(__name__)

__all__ = ["Outcome", "RegistrationError", "publish", "wanted", "withdraw"]


@record
class Outcome:
    """One update's result."""

    ok: bool
    name: str
    where: str  # the server updates went to
    published: tuple[str, ...]  # what the name holds of ours after this update
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    detail: str = ""  # the error line, or what was done
    time: float = 0.0  # unix time
    wanted: tuple[str, ...] = ()  # what this update tried to publish


def wanted(settings: Settings, external_ips: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The addresses this server should publish, IPv4 first."""
    how = settings.registration.publish
    if how == "underlay":
        ip = settings.underlay_ip
        return (ip,) if ip else ()
    ext = addr_mod.order_v4_first(list(external_ips))
    if how in ("ipv4", "ipv6"):
        fam = 4 if how == "ipv4" else 6
        ext = [a for a in ext if addr_mod.family(a) == fam]
    return tuple(ext)


def _summary(name: str, where: str, added, removed) -> str:
    parts = []
    if added:
        parts.append("published " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    return f"{name} at {where}: " + ("; ".join(parts) or "already current")


def publish(
    settings: Settings,
    addrs: tuple[str, ...],
    backend: Backend | None = None,
    wall: Callable[[], float] = time.time,
) -> Outcome:
    """Make the name hold ``addrs`` of ours: one update removing what this server published last
    (and nothing else) and adding ``addrs``. Never raises for DNS trouble: the Outcome says."""
    reg = settings.registration
    file = published.path(settings.paths.state_dir)
    rec = published.load(file)
    where = reg.server or reg.backend
    try:
        backend = backend or load(reg)
        where = backend.where()
        if rec is not None and rec.name != reg.name and rec.addresses:
            _withdraw_old(settings, rec, file)
            rec = None
        old = rec.addresses if rec is not None else ()
        backend.replace(tuple(a for a in old if a not in addrs), addrs)
    except RegistrationError as e:
        return Outcome(
            False, reg.name, where, old_or(rec), detail=str(e), time=wall(), wanted=addrs
        )
    except Exception as e:  # a plugin's bug must not end the daemon
        detail = f"{reg.name} at {where}: {e.__class__.__name__}: {e}"
        return Outcome(
            False, reg.name, where, old_or(rec), detail=detail, time=wall(), wanted=addrs
        )
    now = wall()
    if addrs:
        published.save(file, published.Record(reg.name, addrs, now))
    else:
        published.remove(file)
    added = tuple(a for a in addrs if a not in old)
    removed = tuple(a for a in old if a not in addrs)
    detail = _summary(reg.name, where, added, removed)
    return Outcome(True, reg.name, where, addrs, added, removed, detail, now, addrs)


def old_or(rec: published.Record | None) -> tuple[str, ...]:
    return rec.addresses if rec is not None else ()


def _withdraw_old(settings: Settings, rec: published.Record, file: str) -> None:
    """The name changed in the settings: take our records out of the old name first."""
    old = replace(settings.registration, name=rec.name, zone="")
    try:
        load(old).replace(rec.addresses, ())
        log.info("registration: %s renamed to %s: withdrew %s from the old name",
                 rec.name, settings.registration.name, ", ".join(rec.addresses))  # fmt: skip
    except RegistrationError as e:
        log.warning("registration: could not withdraw from the old name: %s", e)
    published.remove(file)


def withdraw(settings: Settings, backend: Backend | None = None) -> Outcome:
    """Remove the records this server published (as remembered); forget them on success."""
    reg = settings.registration
    file = published.path(settings.paths.state_dir)
    rec = published.load(file)
    name = rec.name if rec is not None else reg.name
    where = reg.server or reg.backend
    if rec is None or not rec.addresses:
        return Outcome(
            True, name, where, (), detail=f"{name or '-'}: nothing published by this node"
        )
    try:
        backend = backend or load(replace(reg, name=rec.name) if rec.name != reg.name else reg)
        where = backend.where()
        backend.replace(rec.addresses, ())
    except RegistrationError as e:
        return Outcome(False, name, where, rec.addresses, detail=str(e), time=time.time())
    published.remove(file)
    detail = _summary(name, where, (), rec.addresses)
    return Outcome(True, name, where, (), (), rec.addresses, detail, time.time())
