"""Build one frozen ``Settings`` from the layers a node is told things in.

Precedence, lowest to highest: built-in defaults < the TOML file < ``k3snode.env`` beside it (what
``k3snode configure``/``apply`` saved from an earlier environment, ``envfile.py``) < environment <
flags. Secrets are never read from either file: a token or auth key comes from the environment or
from a 0600 file named by ``token_file`` / ``auth_key_file``.

Errors name where the bad value came from and the value itself, e.g.::

    /etc/k3snode/config.toml: [k3s] server: must be https://host:port (got 'k3s.example.com')
    environment K3S_URL: must be https://host:port (got 'k3s.example.com')
    --external-ip: not an IP address: '1.2.3' (got '1.2.3')

The K3s installer's variables are honoured so that cloud-init one-liners read naturally:
``K3S_URL``, ``K3S_TOKEN``, ``K3S_TOKEN_FILE``, ``K3S_NODE_NAME``. A token given as ``K3S_TOKEN``
is kept as a Secret and written by ``apply`` to a 0600 file; it is never put into config.yaml.

This package knows nothing of K3s's own rules: ``[k3s] options`` are checked against K3s's flag
list by ``k3snode.k3s.options.check_settings`` on top of ``load``.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any, Callable

from k3snode import envfile, suggest
from k3snode.config import checks
from k3snode.config.checks import SECRET_PAIRS
from k3snode.config.model import (
    DEFAULT_CONFIG,
    FROM_ENV,
    FROM_FILE,
    FROM_FLAG,
    FROM_SAVED,
    SECTION_TYPES,
    Settings,
    SettingsError,
)
from k3snode.config.schema import BY_NAME, SCHEMA, SECTIONS
from k3snode.record import replace

log = logging.getLogger(__name__)


def read_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise SettingsError(f"{path}: cannot read (permission denied)") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a directory, not a settings file") from None
    except OSError as e:
        raise SettingsError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: invalid TOML: {e}") from None


def loose_permissions(path: str) -> list[str]:
    """Why others than root (or the user running k3snode) could change the settings file: it or
    its directory writable by group or others (without the sticky bit), or owned by someone else.
    k3snode runs as root and writes what this file says, so such a file is a way to root."""
    problems = []
    me = os.geteuid()
    for what, p in (
        ("settings file", path),
        ("its directory", os.path.dirname(os.path.abspath(path))),
    ):
        try:
            st = os.stat(p)
        except OSError:
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            continue  # /dev/null and the like: nothing to write into
        mode = stat.S_IMODE(st.st_mode)
        sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if mode & 0o022 and not sticky_dir:
            problems.append(f"{p}: {what} is writable by others (mode {mode:04o}); chmod go-w it")
        elif st.st_uid not in (0, me):
            problems.append(f"{p}: {what} is owned by uid {st.st_uid}, not root")
    return problems


def _walk_file(path: str, data: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, str]]:
    """Flatten the TOML document into ``{(section, key): (value, origin)}``; unknown keys are errors."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    all_names = [f"[{s.section}] {s.key}" for s in SCHEMA]
    for top, value in data.items():
        if top not in SECTIONS:
            if isinstance(value, dict):
                hint = suggest.closest(top, SECTIONS)
                more = f" (did you mean [{hint}]?)" if hint else ""
                raise SettingsError(f"{path}: unknown section [{top}]{more}")
            owners = [f"[{s.section}] {s.key}" for s in SCHEMA if s.key == top]
            hint = (
                f" (did you mean {owners[0]}?)" if owners else suggest.did_you_mean(top, all_names)
            )
            raise SettingsError(f"{path}: unknown key {top!r} outside any section{hint}")
        if not isinstance(value, dict):
            raise SettingsError(f"{path}: [{top}] must be a table (got {value!r})")
        keys = [s.key for s in SCHEMA if s.section == top]
        for key, v in value.items():
            if key not in keys:
                alt = key.replace("-", "_")
                hint = f" (did you mean {alt}?)" if alt in keys else suggest.did_you_mean(key, keys)
                raise SettingsError(f"{path}: unknown key [{top}] {key}{hint}")
            if BY_NAME[(top, key)].secret:
                raise SettingsError(f"{path}: [{top}] {key}: {_secret_hint(top, key)}")
            out[(top, key)] = (v, f"{path}: [{top}] {key}")
    return out


def _secret_hint(section: str, key: str) -> str:
    if (section, key) == ("k3s", "token"):
        return (
            "the token is never read from a settings file; put it in a 0600 file and set "
            "[k3s] token_file, or give it as K3S_TOKEN"
        )
    return (
        f"a secret is never read from a settings file; put it in a 0600 file and set "
        f"[{section}] {key}_file, or give it as {BY_NAME[(section, key)].generic_env}"
    )


def _walk_env(
    env: Mapping[str, str], saved: str | None = None
) -> dict[tuple[str, str], tuple[Any, str]]:
    """The setting variables in ``env``; ``saved`` names a k3snode.env they were read from (where
    every name must be a setting and no secret may be)."""
    out: dict[tuple[str, str], tuple[Any, str]] = {}
    for spec in SCHEMA:
        if spec.key in ("options", "peers"):
            continue  # tables are file-only
        for name in (spec.generic_env, *spec.env):
            if name in env and env[name] != "":
                if saved is not None and spec.secret:
                    instead = (
                        "K3S_TOKEN_FILE" if spec.key == "token" else spec.generic_env + "_FILE"
                    )
                    raise SettingsError(
                        f"{saved}: {name}: secrets are never kept in {envfile.NAME}; use {instead}"
                    )
                label = f"{saved}: {name}" if saved is not None else f"environment {name}"
                out[(spec.section, spec.key)] = (env[name], label)
    # A K3SNODE_* variable that is not a setting is most likely a typo.
    known = {n for s in SCHEMA for n in (s.generic_env, *s.env)}
    for name in env:
        if saved is not None and name not in known:
            raise SettingsError(
                f"{saved}: {name}: not a k3snode setting"
                + suggest.did_you_mean(name, sorted(known))
            )
        if name.startswith("K3SNODE_") and name not in known | {"K3SNODE_CONFIG"}:
            raise SettingsError(
                f"environment {name}: not a k3snode setting"
                + suggest.did_you_mean(name, sorted(known))
            )
    for secret, file_key in SECRET_PAIRS:
        if secret in out and file_key in out:
            where = saved or "environment"
            raise SettingsError(
                f"{where}: set {out[secret][1].split()[-1]} or {out[file_key][1].split()[-1]}, "
                "not both"
            )
    return out


def _stack(
    layered: dict[tuple[str, str], tuple[Any, str]],
    sources: dict[str, str],
    layer: dict[tuple[str, str], tuple[Any, str]],
    name: str,
) -> None:
    """Put ``layer`` on top: a secret or its file setting in it hides the other one below."""
    for pair in SECRET_PAIRS:
        for mine, other in (pair, pair[::-1]):
            if mine in layer and other not in layer:
                layered.pop(other, None)
                sources.pop(f"{other[0]}.{other[1]}", None)
    layered.update(layer)
    sources.update({f"{k[0]}.{k[1]}": name for k in layer})


def load(
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str, str], Any] | None = None,
    override_names: Mapping[tuple[str, str], str] | None = None,
) -> Settings:
    """Build Settings from file, environment and flag overrides; raise SettingsError on mistakes.

    ``config_path`` None means: ``K3SNODE_CONFIG`` or the default path, either of which may be
    missing. A path given explicitly (``--config``) must exist.
    """
    env = os.environ if env is None else env
    overrides = overrides or {}
    override_names = override_names or {}
    explicit = config_path is not None or bool(env.get("K3SNODE_CONFIG"))
    path = config_path or env.get("K3SNODE_CONFIG") or DEFAULT_CONFIG
    layered: dict[tuple[str, str], tuple[Any, str]] = {}
    sources: dict[str, str] = {}
    file_used: str | None = None
    try:
        os.stat(path)
    except PermissionError:  # a directory on the way is closed to this user: not "missing"
        raise SettingsError(f"{path}: cannot read (permission denied)") from None
    except OSError:
        pass
    if os.path.exists(path) or explicit:
        if not os.path.exists(path):
            src = "--config" if config_path is not None else "environment K3SNODE_CONFIG"
            raise SettingsError(f"{src}: settings file {path} does not exist")
        _stack(layered, sources, _walk_file(path, read_toml(path)), FROM_FILE)
        file_used = path
        for problem in loose_permissions(path):
            log.warning("warning: %s", problem)
    env_path = envfile.path_for(path)
    try:
        saved = envfile.read(env_path)
    except envfile.EnvFileError as e:
        raise SettingsError(str(e)) from None
    if saved is not None:
        _stack(layered, sources, _walk_env(saved, saved=env_path), FROM_SAVED)
    _stack(layered, sources, _walk_env(env), FROM_ENV)
    flags = {}
    for key, value in overrides.items():
        if value is not None:
            flags[key] = (value, override_names.get(key, f"--{key[1].replace('_', '-')}"))
    _stack(layered, sources, flags, FROM_FLAG)

    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    origins: dict[str, str] = {}
    for spec in SCHEMA:
        raw, origin = layered.get((spec.section, spec.key), (spec.default, ""))
        if (spec.section, spec.key) in layered:
            try:
                _no_control_characters(raw)
                from_file = file_used is not None and origin.startswith(f"{file_used}: [")
                if spec.check is checks.boolean and from_file and not isinstance(raw, bool):
                    raise ValueError("must be true or false (a TOML boolean, without quotes)")
                value = spec.check(raw)
            except ValueError as e:
                shown = "********" if spec.secret else show(raw)
                raise SettingsError(f"{origin}: {e} (got {shown})") from None
            origins[f"{spec.section}.{spec.key}"] = origin
        else:
            value = raw
        values[spec.section][spec.key] = value
    settings = _finish(file_used, values, origins)
    return replace(settings, sources=sources, env_file=env_path)


def _no_control_characters(raw: Any) -> None:
    """Raise ValueError when a string in ``raw`` holds a control character. Checked on the raw
    value, before any parser sees it: ``urlsplit`` drops tab/CR/LF and ``$`` matches before a
    final newline, so a check after parsing would pass ``https://1.2.\t3.4:6443``."""
    if isinstance(raw, str):
        bad = next((c for c in raw if unicodedata.category(c) == "Cc"), None)
        if bad is not None:
            raise ValueError(f"contains the control character {bad!r}")
    elif isinstance(raw, (list, tuple)):
        for item in raw:
            _no_control_characters(item)
    elif isinstance(raw, dict):
        for k, v in raw.items():
            _no_control_characters(k)
            _no_control_characters(v)


def show(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "…"


def _finish(path: str | None, v: dict[str, dict[str, Any]], origins: dict[str, str]) -> Settings:
    """Cross-field rules and derived defaults."""
    k3s = v["k3s"]
    node = v["node"]
    where = lambda s, k: origins.get(f"{s}.{k}", f"[{s}] {k}")  # noqa: E731

    if not node["role"]:
        node["role"] = "agent" if k3s["server"] else "server"
        if k3s["server"]:  # errors about the derived role point at what made it an agent
            origins["node.role"] = origins["k3s.server"]
    role = node["role"]
    if not k3s["unit"]:
        k3s["unit"] = "k3s" if role == "server" else "k3s-agent"
    has_token = bool(k3s["token_file"]) or k3s["token"] is not None
    if role == "agent":
        if not k3s["server"]:
            raise SettingsError(
                f"{where('node', 'role')}: an agent needs a server URL: set [k3s] "
                "server, K3S_URL or --server (got role 'agent' with no server)"
            )
        if not has_token:
            raise SettingsError(
                f"{where('node', 'role')}: an agent needs a token: set [k3s] "
                "token_file, K3S_TOKEN_FILE, K3S_TOKEN or --token-file "
                "(got role 'agent' with no token)"
            )
        if k3s["cluster_init"]:
            raise SettingsError(
                f"{where('k3s', 'cluster_init')}: only a server can initialise a "
                "cluster (got cluster_init = true for role 'agent')"
            )
    if role == "server" and k3s["server"] and not has_token:
        raise SettingsError(
            f"{where('k3s', 'server')}: a server joining {k3s['server']} needs a "
            "token: set [k3s] token_file, K3S_TOKEN_FILE or K3S_TOKEN"
        )
    if k3s["cluster_init"] and k3s["server"]:
        raise SettingsError(
            f"{where('k3s', 'cluster_init')}: cluster_init is for the first server; "
            f"a server joining {k3s['server']} must not set it"
        )
    ts = v["tailscale"]
    if ts["auth_key"] is not None and not ts["auth_key_file"]:
        ts["auth_key_file"] = os.path.join(v["paths"]["state_dir"], "tailscale.key")
    if node["mesh"] == "tailscale" and not ts["auth_key_file"]:
        raise SettingsError(
            f"{where('node', 'mesh')}: mesh 'tailscale' needs [tailscale] "
            "auth_key_file or K3SNODE_TAILSCALE_AUTH_KEY (got mesh 'tailscale' with no auth key)"
        )
    ul = v["underlay"]
    if ul["enabled"] and not ul["address"]:
        raise SettingsError(
            f"{where('underlay', 'enabled')}: the underlay needs [underlay] address "
            "(got enabled = true with no address)"
        )
    if ul["enabled"] and node["mesh"] == "tailscale" and role == "server":
        # K3s's VPN integration replaces node-ip with the Tailscale addresses before the server
        # reads it (pkg/executor/embed/embed.go New, since k3s-io/k3s f891548e): etcd would
        # advertise and peer on Tailscale, never on the underlay.
        raise SettingsError(
            f"{where('underlay', 'enabled')}: a server cannot use the underlay with mesh "
            "'tailscale': K3s then replaces node-ip with the Tailscale address, so etcd would "
            "peer over Tailscale, not the underlay; use mesh 'wireguard-native' or turn the "
            "underlay off (got mesh 'tailscale' and underlay enabled on a server)"
        )

    _check_registration(v, role, where)

    sections = {name: cls(**v[name]) for name, cls in SECTION_TYPES.items()}
    return Settings(file=path, origins=origins, **sections)


def _check_registration(v: dict[str, dict[str, Any]], role: str, where: Callable) -> None:
    """A server with a registration name needs what its backend needs; agents only read the name."""
    reg = v["registration"]
    if role != "server" or not reg["name"]:
        return
    if reg["backend"] == "rfc2136":
        for key in ("server", "key_file"):
            if not reg[key]:
                raise SettingsError(
                    f"{where('registration', 'name')}: publishing {reg['name']} needs "
                    f"[registration] {key} (got name {reg['name']!r} with no {key})"
                )
    if reg["publish"] == "underlay" and not v["underlay"]["enabled"]:
        raise SettingsError(
            f'{where("registration", "publish")}: publish = "underlay" needs the underlay '
            "([underlay] enabled = true)"
        )
