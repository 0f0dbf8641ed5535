"""One pass, top to bottom — what ``k3snode apply`` does once and the daemon on every change:

    discover ──► judge ──► plan ──► commit ──► restart decision
    (Discovery)  (reason    (Planned: rendered   (Written: what changed,   (``Written.restart_needed``,
                  or None)   options, file plan,  under the write lock)      then ``restart``)
                             secret files)

``plan`` computes everything and writes nothing (``render``, ``apply --dry-run``); ``commit``
writes what ``plan`` planned; ``write`` is both under the lock ``apply`` and the daemon share, so
a CLI ``apply`` and a daemon pass can never disagree about what the file should contain. Checks
that need no network (``check_local``, ``check_role``) run before discovery, so a mistake costs
nothing and changes nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from k3snode import fileio, locks, state
from k3snode.config.model import DEFAULT_CONFIG, Settings, SettingsError
from k3snode.discovery import Session
from k3snode.discovery import discover as discover_public
from k3snode.discovery.result import Discovery
from k3snode.k3s import configfile, options
from k3snode.k3s.secrets import SecretFile, loose_mode, read_secret, secret_files
from k3snode.k3s.service import RestartResult, Service
from k3snode.record import asdict, record

log = logging.getLogger(__name__)


# -- before discovery -------------------------------------------------------------------------


def check_local(settings: Settings) -> None:
    """Every user mistake that needs no network: the config path, the secret files, the existing
    config file. Raises SettingsError / ConfigFileError."""
    _check_path(settings)
    if settings.k3s.token_file:  # K3s would fail at start on a missing or empty token file
        read_secret(settings.k3s.token_file, settings.where("k3s", "token_file"))
    secret_files(settings)
    for path in (settings.k3s.token_file, settings.tailscale.auth_key_file):
        warning = loose_mode(path)
        if warning:
            log.warning("warning: %s", warning)
    path = settings.k3s.config
    if not configfile.unchanged_since(path, _known(_state_or_empty(settings), path)):
        configfile.plan(path, {}, set(), settings.role)  # parses: says what is wrong with it


class RoleChangeError(SettingsError):
    """The settings would turn the node into K3s's default server although it was last applied
    as something else and nothing names a role now."""


def check_role(settings: Settings) -> None:
    """Refuse to change the role last applied (``state.json``) to K3s's default: the role may
    change only when something states it — ``[node] role``, ``K3SNODE_ROLE`` or ``--role``, a
    server URL (an agent, as with K3s's installer) or ``cluster_init`` (a server), from the
    settings file, k3snode.env, the environment or flags (``Settings.configured``)."""
    try:
        last = _last_role(state.load(settings.state_file))
    except (OSError, state.StateError):
        return  # unreadable: the write that needs it says so
    if not last or last == settings.role or settings.configured:
        return
    raise RoleChangeError(
        f"{settings.state_file}: this node was last applied as {last} and nothing names its role "
        f"now (no [node] role, server URL or cluster_init in {settings.file or DEFAULT_CONFIG}, "
        f"{settings.env_file}, the environment or flags); not making it a {settings.role} "
        "(K3s's default), nothing written; give K3S_URL and K3S_TOKEN again "
        "(`k3snode configure`) or set [node] role"
    )


def _last_role(st: state.State) -> str:
    """The role last applied; for a state.json from before k3snode recorded it, what the keys it
    wrote say (``server`` + ``token-file`` without a server-only key: an agent)."""
    if st.role:
        return st.role
    keys = {k for ks in st.managed.values() for k in ks}
    if {"server", "token-file"} <= keys and not keys & {"flannel-backend", "cluster-init"}:
        return "agent"
    return ""


def _check_path(settings: Settings) -> None:
    path = settings.k3s.config
    problem = configfile.check_path(path)
    if problem:
        raise SettingsError(f"{settings.where('k3s', 'config')}: {problem} (got {path!r})")


# -- discover, judge --------------------------------------------------------------------------


def mesh_up(settings: Settings) -> Any:
    """Bring the mesh up before discovery — for mesh "tailscale": install when missing, start
    tailscaled, ``tailscale up`` unless Running (``mesh/tailscale/bringup.py``). Returns its
    state (None for other meshes); raises ``TailscaleError`` with a one-line reason."""
    if settings.mesh == "tailscale":
        from k3snode.mesh.tailscale import bringup

        return bringup.ensure_up(settings)
    return None


def discover(settings: Settings, session: Session | None = None) -> Discovery:
    """The addresses K3s gets as node-external-ip: for mesh "tailscale" the node's Tailscale
    addresses, otherwise the discovered public addresses (``session``: what the daemon keeps
    between polls, such as AWS's metadata token)."""
    if settings.mesh == "tailscale":
        from k3snode.mesh.tailscale import status

        return status.node_addresses(settings)

    return discover_public(settings, session=session)


def judge(settings: Settings, found: Discovery, allow_empty: bool = True) -> str | None:
    """Why this discovery must not be written, or None. ``allow_empty``: with mesh "none" a node
    without a public address still gets its config (as ``apply`` does), unless the caller already
    has a last good address to keep."""
    if found.error:
        return found.error
    if not found.found and (settings.mesh != "none" or not allow_empty):
        return "no external address found"
    return None


# -- plan, commit -----------------------------------------------------------------------------


@record
class Planned:
    """Everything a write would do, computed without writing."""

    options: dict[str, Any]
    file: configfile.Plan
    secrets: tuple[SecretFile, ...]
    stale_paths: dict[str, list[str]]  # other config files k3snode wrote before: keys to remove

    @property
    def keys_changed(self) -> bool:
        """The write adds, changes or removes one of k3snode's keys (not only moves lines)."""
        return bool(self.file.added or self.file.modified or self.file.removed)

    @property
    def summary(self) -> str:
        """ "added node-external-ip; changed server", or "reformatted"."""
        parts = []
        for label, keys in (
            ("added", self.file.added),
            ("changed", self.file.modified),
            ("removed", self.file.removed),
        ):
            if keys:
                parts.append(f"{label} {', '.join(keys)}")
        return "; ".join(parts) or "reformatted"


def plan(settings: Settings, external_ips: list[str], with_secrets: bool = True) -> Planned:
    """Render the options and plan the write; raise SettingsError / ConfigFileError on mistakes."""
    path = settings.k3s.config
    _check_path(settings)
    check_role(settings)
    opts = options.render(settings, external_ips, settings.underlay_ip)
    st = load_state(settings)
    previously = set(st.managed.get(path, []))
    file_plan = configfile.plan(path, opts, previously, settings.role, _known(st, path))
    stale = {p: keys for p, keys in st.managed.items() if p != path and keys}
    secrets = secret_files(settings) if with_secrets else ()
    return Planned(opts, file_plan, secrets, stale)


@record
class Written:
    """What one write changed."""

    planned: Planned
    addresses: tuple[str, ...]
    config_changed: bool  # the file's bytes changed (also when only lines moved)
    secrets_changed: tuple[str, ...]
    stale_cleaned: tuple[str, ...]

    @property
    def path(self) -> str:
        return self.planned.file.path

    @property
    def summary(self) -> str:
        return self.planned.summary if self.config_changed else "unchanged"

    @property
    def restart_needed(self) -> bool:
        """The one "changed" rule: K3s would read something new — one of k3snode's keys, the
        token or vpn-auth file, a drop-in k3snode left. A write that only moved lines (the user
        appended a key below k3snode's block) is not."""
        return bool(
            self.secrets_changed
            or self.stale_cleaned
            or (self.config_changed and self.planned.keys_changed)
        )


def _known(st: state.State, path: str) -> configfile.Settled | None:
    """The stamp of k3snode's last write of ``path``, if any."""
    entry = st.settled.get(path)
    if entry is None:
        return None
    return configfile.Settled(entry["text"], entry["inputs"], tuple(entry["warnings"]))


def _state_or_empty(settings: Settings) -> state.State:
    try:
        return state.load(settings.state_file)
    except (OSError, state.StateError):
        return state.State()


def load_state(settings: Settings) -> state.State:
    """k3snode's state; when the file is damaged, the managed keys of the config k3snode writes
    are rebuilt from its marker block (a warning was logged), so none is orphaned."""
    st = state.load_or_recover(settings.state_file)
    if st.damaged is not None:
        keys = configfile.marker_keys(settings.k3s.config)
        if keys:
            st.managed[settings.k3s.config] = keys
    return st


def commit(settings: Settings, planned: Planned, addresses: tuple[str, ...] = ()) -> Written:
    """Write secrets, then the config, recording managed keys so none is ever orphaned.

    The state file is updated *before* the config with the union of old and new managed keys, so
    a writer killed in between still remembers every key it may have written.
    """
    path = settings.k3s.config
    os.makedirs(settings.paths.state_dir, mode=0o700, exist_ok=True)
    st = load_state(settings)
    new_keys = list(planned.options)
    union = list(dict.fromkeys([*st.managed.get(path, []), *new_keys]))
    if st.managed.get(path) != union:
        st.managed[path] = union
        state.save(settings.state_file, st)
    changed_secrets = []
    for secret in planned.secrets:
        if fileio.atomic_write(secret.path, secret.content, mode=0o600).changed:
            changed_secrets.append(secret.path)
    config_changed = configfile.apply(planned.file).changed
    cleaned = []
    for other, keys in planned.stale_paths.items():
        if _remove_keys(other, set(keys), settings.role):
            cleaned.append(other)
        st.managed.pop(other, None)
        st.settled.pop(other, None)
    st.managed[path] = new_keys
    st.settled[path] = asdict(configfile.stamp(planned.file, planned.options, settings.role))
    st.role = settings.role
    state.save(settings.state_file, st)
    return Written(planned, addresses, config_changed, tuple(changed_secrets), tuple(cleaned))


def _remove_keys(path: str, keys: set[str], role: str) -> bool:
    """Take k3snode's keys out of a config file it no longer writes (the user moved to a drop-in)."""
    if not os.path.exists(path):
        return False
    try:
        file_plan = configfile.plan(path, {}, keys, role)
    except configfile.ConfigFileError:
        return False  # never touch a file we cannot read safely
    if file_plan.new_text.strip() == "" and configfile.is_dropin(path):
        os.unlink(path)
        fileio.fsync_dir(os.path.dirname(path))
        return True
    return configfile.apply(file_plan).changed


def write(settings: Settings, found: Discovery) -> Written:
    """Plan and commit under the write lock ``apply`` and the daemon share. Raises SettingsError /
    ConfigFileError on a user mistake, OSError (``locks.LockBusy`` among them) when it cannot
    write."""
    with locks.writing(settings.paths.state_dir):
        planned = plan(settings, found.external_ips)
        return commit(settings, planned, tuple(found.external_ips))


# -- restart ----------------------------------------------------------------------------------


def restart(settings: Settings) -> RestartResult:
    """Restart K3s calmly if it runs; never start it."""
    return Service.for_settings(settings).restart_if_running(settings.daemon.restart_timeout)
