"""``k3snode check`` for the registration name: a server can publish (dnspython, the key file),
and a node that joins by a bare IP is told that the name would follow the servers."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from k3snode import state
from k3snode.health.checks import Finding
from k3snode.k3s import configfile
from k3snode.registration import keyfile
from k3snode.registration.backend import RegistrationError, load
from k3snode.registration.rfc2136 import MISSING

if TYPE_CHECKING:
    from k3snode.config.model import Settings

TOPIC = "registration"


def findings(settings: Settings) -> list[Finding]:
    reg = settings.registration
    if not reg.name:
        return []
    out = _joins_by_address(settings)
    if settings.registers:
        out.extend(_can_publish(settings))
        out.extend(_own_tls_san(settings))
    return out


def _joins_by_address(settings: Settings) -> list[Finding]:
    """An agent (or joining server) whose ``server`` is an IP loses the cluster when that server
    moves; the registration name follows it."""
    url = settings.k3s.server
    if not url:
        return []
    u = urlsplit(url)
    host = u.hostname or ""
    name = settings.registration.name
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host.rstrip(".").lower() == name:
            return [Finding("ok", TOPIC, f"joins by the registration name {name}")]
        return []
    return [
        Finding(
            "warning",
            TOPIC,
            f"[k3s] server is the bare address {host}: when that server's address changes this "
            f"node cannot find the cluster again; the registration name follows the servers — "
            f'set [k3s] server = "https://{name}:{u.port}"',
        )
    ]


def _own_tls_san(settings: Settings) -> list[Finding]:
    """A ``tls-san`` written by hand in K3s's config becomes k3snode's key with the name: its
    values belong in ``[k3s.options] tls-san``, which k3snode writes before the name."""
    import yaml

    path = settings.k3s.config
    try:
        old = configfile.plan(path, {}, set(), settings.role).old_text
        current = yaml.safe_load(old) if old else {}
        managed = state.load(settings.state_file).managed.get(path, [])
    except (configfile.ConfigFileError, state.StateError, yaml.YAMLError):
        return []  # the settings preflight reports those
    if "tls-san" not in current or "tls-san" in managed:
        return []
    return [
        Finding(
            "warning",
            TOPIC,
            f"{path}: your tls-san {current['tls-san']!r} is replaced by k3snode's (with "
            f"{settings.registration.name}); move its values to [k3s.options] tls-san",
        )
    ]


def _can_publish(settings: Settings) -> list[Finding]:
    reg = settings.registration
    if reg.backend != "rfc2136":
        try:
            load(reg)
        except RegistrationError as e:
            return [Finding("error", TOPIC, str(e))]
        return [Finding("ok", TOPIC, f"publishes {reg.name} through {reg.backend}")]

    try:
        import dns.update  # noqa: F401
    except ImportError:
        return [Finding("error", TOPIC, MISSING)]
    try:
        key = keyfile.read(reg.key_file, reg.algorithm, settings.where("registration", "key_file"))
    except keyfile.KeyFileError as e:
        return [Finding("error", TOPIC, str(e))]
    return [
        Finding(
            "ok",
            TOPIC,
            f"publishes {reg.name} ({reg.publish}) at {reg.server} with TSIG key "
            f"{key.name!r} ({key.algorithm}); {reg.name} is in tls-san",
        )
    ]
