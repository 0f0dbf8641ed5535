"""One pass of the pipeline after discovery: render → secret files → merge-safe write.

``prepare`` computes everything and writes nothing (``render``, ``apply --dry-run``); ``commit``
writes what ``prepare`` planned. The daemon calls the same two functions on every pass, so a CLI
``apply`` and a daemon pass can never disagree about what the file should contain.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from typing import Any

from k3snode import fileio, state
from k3snode.config.model import DEFAULT_CONFIG, Settings, SettingsError
from k3snode.discovery.result import Discovery
from k3snode.k3s import configfile, options
from k3snode.k3s.vpn_auth import VPNAuthError, vpn_auth_line

log = logging.getLogger("k3snode")


def mesh_up(settings: Settings) -> Any:
    """Bring the mesh up before discovery — for mesh "tailscale": install when missing, start
    tailscaled, ``tailscale up`` unless Running (``mesh/tailscale.py``). Returns its state (None
    for other meshes); raises ``tailscale.TailscaleError`` with a one-line reason."""
    if settings.mesh == "tailscale":
        from k3snode.mesh import tailscale

        return tailscale.ensure_up(settings)
    return None


def external_addresses(settings: Settings) -> Discovery:
    """The addresses K3s gets as node-external-ip: for mesh "tailscale" the node's Tailscale
    addresses (``mesh/tailscale.py``), otherwise the discovered public addresses."""
    if settings.mesh == "tailscale":
        from k3snode.mesh import tailscale

        return tailscale.node_addresses(settings)
    from k3snode.discovery import discover

    return discover(settings)


def underlay_ip(settings: Settings) -> str | None:
    """This node's underlay address (without prefix) when the underlay is on: K3s's node-ip."""
    if not settings.underlay.enabled:
        return None
    return settings.underlay.address.split("/", 1)[0]


@dataclass(frozen=True)
class SecretFile:
    path: str
    content: bytes


@dataclass(frozen=True)
class Prepared:
    options: dict[str, Any]
    plan: configfile.Plan
    secrets: tuple[SecretFile, ...]
    previously_managed: frozenset[str]
    stale_paths: dict[str, list[str]]  # other config files k3snode wrote before: keys to remove


@dataclass(frozen=True)
class Committed:
    config_changed: bool
    secrets_changed: tuple[str, ...]
    stale_cleaned: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """K3s would see something new: its config or a file the config points at."""
        return self.config_changed or bool(self.secrets_changed) or bool(self.stale_cleaned)


def _read_secret(path: str, label: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except FileNotFoundError:
        raise SettingsError(f"{label}: file {path} does not exist") from None
    except PermissionError:
        raise SettingsError(f"{label}: cannot read {path} (permission denied)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{label}: cannot read {path} ({e})") from None
    if not value:
        raise SettingsError(f"{label}: file {path} is empty")
    return value


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


def _auth_key(settings: Settings) -> str:
    ts = settings.tailscale
    if ts.auth_key is not None:
        return ts.auth_key.reveal().strip()
    return _read_secret(ts.auth_key_file, settings.where("tailscale", "auth_key_file"))


def secret_files(settings: Settings) -> tuple[SecretFile, ...]:
    """The 0600 files K3s is pointed at and k3snode writes: the K3S_TOKEN copy, the vpn-auth line."""
    out = []
    if settings.k3s.token is not None and not settings.k3s.token_file:
        out.append(SecretFile(settings.token_path, (settings.k3s.token.reveal() + "\n").encode()))
    if settings.mesh == "tailscale":
        ts = settings.tailscale
        label = settings.where("tailscale", "auth_key_file")
        key = _auth_key(settings)
        from k3snode.mesh.tailscale_bringup import identity_args

        try:  # hostname and extra args go along, so that K3s's own `tailscale up` keeps them
            line = vpn_auth_line(key, ts.control_server_url, identity_args(settings))
        except VPNAuthError as e:
            raise SettingsError(f"{label}: {e}") from None
        out.append(SecretFile(settings.vpn_auth_path, line.encode()))
    return tuple(out)


def loose_mode(path: str) -> str | None:
    """A warning when a secret file can be read by group or others, with the fix."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path else 0
    except OSError:
        return None
    if not mode & 0o044:
        return None
    return f"{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}"


def check_local(settings: Settings) -> None:
    """Every user mistake that needs no network: the config path, the secret files, the existing
    config file. Raises SettingsError / ConfigFileError; run before discovery so that a mistake
    costs nothing and changes nothing."""
    _check_path(settings)
    if settings.k3s.token_file:  # K3s would fail at start on a missing or empty token file
        _read_secret(settings.k3s.token_file, settings.where("k3s", "token_file"))
    secret_files(settings)
    for path in (settings.k3s.token_file, settings.tailscale.auth_key_file):
        warning = loose_mode(path)
        if warning:
            log.warning("warning: %s", warning)
    configfile.plan(settings.k3s.config, {}, set(), settings.role)


def _check_path(settings: Settings) -> None:
    path = settings.k3s.config
    problem = configfile.check_path(path)
    if problem:
        raise SettingsError(f"{settings.where('k3s', 'config')}: {problem} (got {path!r})")


def prepare(
    settings: Settings,
    external_ips: list[str],
    underlay_ip: str | None = None,
    with_secrets: bool = True,
) -> Prepared:
    """Render the options and plan the write; raise SettingsError / ConfigFileError on mistakes."""
    path = settings.k3s.config
    _check_path(settings)
    check_role(settings)
    opts = options.render(settings, external_ips, underlay_ip)
    st = load_state(settings)
    previously = frozenset(st.managed.get(path, []))
    plan = configfile.plan(path, opts, set(previously), settings.role)
    stale = {p: keys for p, keys in st.managed.items() if p != path and keys}
    secrets = secret_files(settings) if with_secrets else ()
    return Prepared(opts, plan, secrets, previously, stale)


def load_state(settings: Settings) -> state.State:
    """k3snode's state; when the file is damaged, the managed keys of the config k3snode writes
    are rebuilt from its marker block (a warning was logged), so none is orphaned."""
    st = state.load_or_recover(settings.state_file)
    if st.damaged is not None:
        keys = configfile.marker_keys(settings.k3s.config)
        if keys:
            st.managed[settings.k3s.config] = keys
    return st


def commit(settings: Settings, prepared: Prepared) -> Committed:
    """Write secrets, then the config, recording managed keys so none is ever orphaned.

    The state file is updated *before* the config with the union of old and new managed keys, so
    a writer killed in between still remembers every key it may have written.
    """
    path = settings.k3s.config
    os.makedirs(settings.paths.state_dir, mode=0o700, exist_ok=True)
    st = load_state(settings)
    new_keys = list(prepared.options)
    union = list(dict.fromkeys([*st.managed.get(path, []), *new_keys]))
    if st.managed.get(path) != union:
        st.managed[path] = union
        state.save(settings.state_file, st)
    changed_secrets = []
    for secret in prepared.secrets:
        if fileio.atomic_write(secret.path, secret.content, mode=0o600).changed:
            changed_secrets.append(secret.path)
    config_changed = configfile.apply(prepared.plan).changed
    cleaned = []
    for other, keys in prepared.stale_paths.items():
        if _remove_keys(other, set(keys), settings.role):
            cleaned.append(other)
        st.managed.pop(other, None)
    st.managed[path] = new_keys
    st.role = settings.role
    state.save(settings.state_file, st)
    return Committed(config_changed, tuple(changed_secrets), tuple(cleaned))


def _remove_keys(path: str, keys: set[str], role: str) -> bool:
    """Take k3snode's keys out of a config file it no longer writes (the user moved to a drop-in)."""
    if not os.path.exists(path):
        return False
    try:
        plan = configfile.plan(path, {}, keys, role)
    except configfile.ConfigFileError:
        return False  # never touch a file we cannot read safely
    if plan.new_text.strip() == "" and configfile.is_dropin(path):
        os.unlink(path)
        fileio.fsync_dir(os.path.dirname(path))
        return True
    return configfile.apply(plan).changed
