"""What defines the node, kept once it was given: role, server URL, token, mesh, Tailscale key, node
name, cluster_init. ``k3snode configure`` and ``k3snode apply`` save the ones that came from the
environment or flags into ``k3snode.env`` beside the settings file (``envfile.py``), so that a
later ``apply`` and the daemon after a reboot — which see neither — render the same node.

Secrets are stored as 0600 files in the state directory (``token``, ``tailscale.key``) and saved
as the variable naming the file (``K3S_TOKEN_FILE``, ``K3SNODE_TAILSCALE_AUTH_KEY_FILE``).
"""

from __future__ import annotations

import os

from k3snode import envfile, fileio
from k3snode.config.model import FROM_ENV, FROM_FLAG, Settings, SettingsError
from k3snode.record import record

# (section, key) -> the variable that keeps it in k3snode.env (the order of the file)
SAVED: tuple[tuple[tuple[str, str], str], ...] = (
    (("node", "role"), "K3SNODE_ROLE"),
    (("k3s", "server"), "K3S_URL"),
    (("k3s", "token_file"), "K3S_TOKEN_FILE"),
    (("node", "mesh"), "K3SNODE_MESH"),
    (("tailscale", "auth_key_file"), "K3SNODE_TAILSCALE_AUTH_KEY_FILE"),
    (("k3s", "node_name"), "K3S_NODE_NAME"),
    (("k3s", "cluster_init"), "K3SNODE_K3S_CLUSTER_INIT"),
)
_ORDER = [var for _, var in SAVED]


@record
class Stored:
    """A secret k3snode keeps as a file: what it is, where, its content."""

    what: str  # "token" | "Tailscale auth key"
    path: str
    content: bytes


@record
class Plan:
    """What saving the node's identity will write: k3snode.env and its secret files."""

    path: str  # the k3snode.env
    variables: dict[str, str]  # the whole file's variables after saving
    given: tuple[str, ...]  # the variables this run sets (from the environment or flags)
    secrets: tuple[Stored, ...]


@record
class Saved:
    """The outcome of saving a Plan."""

    plan: Plan
    changed: bool  # k3snode.env or a secret file was written

    def describe(self) -> str:
        """``saved PATH: K3S_URL, K3S_TOKEN_FILE (token in /var/lib/k3snode/token, 0600)``."""
        p = self.plan
        if not self.changed:
            return f"unchanged: {p.path}"
        where = "".join(f" ({s.what} in {s.path}, 0600)" for s in p.secrets)
        return f"saved {p.path}: {', '.join(p.given)}{where}"


def _given(settings: Settings, section: str, key: str) -> bool:
    return settings.sources.get(f"{section}.{key}") in (FROM_ENV, FROM_FLAG)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def plan(settings: Settings) -> Plan:
    """What saving would write; raises SettingsError when a value cannot be kept (nothing written)."""
    try:
        existing = envfile.read(settings.env_file) or {}
    except envfile.EnvFileError as e:
        raise SettingsError(str(e)) from None
    new: dict[str, str] = {}
    secrets: list[Stored] = []
    for (section, key), var in SAVED:
        if _given(settings, section, key):
            new[var] = _text(getattr(getattr(settings, section), key))
    token = settings.k3s.token
    if token is not None and _given(settings, "k3s", "token"):
        path = os.path.join(settings.paths.state_dir, "token")
        secrets.append(Stored("token", path, (token.reveal() + "\n").encode()))
        new["K3S_TOKEN_FILE"] = path
    key = settings.tailscale.auth_key
    if key is not None and _given(settings, "tailscale", "auth_key"):
        path = settings.auth_key_store
        secrets.append(Stored("Tailscale auth key", path, (key.reveal() + "\n").encode()))
        new["K3SNODE_TAILSCALE_AUTH_KEY_FILE"] = path
    for var, value in new.items():
        if not envfile.SAFE_VALUE.match(value):
            raise SettingsError(
                f"{settings.env_file}: {var}: cannot be kept in {envfile.NAME}: only letters, "
                f"digits and _./:@+,=%- (got {value!r})"
            )
    merged = {**existing, **new}
    ordered = {v: merged[v] for v in _ORDER if v in merged}
    ordered.update({v: val for v, val in merged.items() if v not in ordered})
    given = tuple(v for v in _ORDER if v in new)
    return Plan(settings.env_file, ordered, given, tuple(secrets))


class SaveError(Exception):
    """A file could not be written (a runtime failure, exit 1); one line naming it."""


def save(settings: Settings) -> Saved | None:
    """Write the secret files (0600), then k3snode.env; None when nothing came from the
    environment or flags and no k3snode.env exists (nothing to save, nothing written)."""
    p = plan(settings)
    if not p.given and not os.path.exists(p.path):
        return None
    changed = False
    target = settings.paths.state_dir
    try:
        if p.secrets:
            os.makedirs(target, mode=0o700, exist_ok=True)
        for s in p.secrets:
            target = s.path
            changed |= fileio.atomic_write(s.path, s.content, mode=0o600).changed
        if p.given:
            target = p.path
            changed |= envfile.write(p.path, p.variables)
    except OSError as e:
        raise SaveError(f"cannot write {target}: {e.strerror or e}") from None
    return Saved(p, changed)
