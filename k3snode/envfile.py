"""``k3snode.env``: what a node was told once through the environment or flags, kept beside the
settings file (``/etc/k3snode/k3snode.env``), as K3s keeps ``k3s.service.env``.

The syntax is systemd's ``EnvironmentFile``: ``NAME=value`` lines, ``#`` comments. k3snode writes
only values made of characters that need no quoting (``SAFE_VALUE``), so the file reads the same to
systemd, to a shell and to this parser. It never holds a secret: tokens and auth keys live in 0600
files it names (``K3S_TOKEN_FILE``, ``K3SNODE_TAILSCALE_AUTH_KEY_FILE``).
"""

from __future__ import annotations

import os
import re

from k3snode import fileio

NAME = "k3snode.env"
HEADER = (
    "# Written by k3snode (`k3snode configure` / `k3snode apply`): what this node was told through\n"
    "# the environment or flags, so that the daemon and later runs render the same node.\n"
    "# Read by k3snode before config.toml (flags > environment > this file > config.toml).\n"
    "# Secrets are never kept here, only the 0600 files that hold them.\n"
)
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@+,=%-]*$")
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class EnvFileError(Exception):
    """The file cannot be read or has a line that is not ``NAME=value``; one line, names the file."""


def path_for(config_path: str) -> str:
    """``k3snode.env`` beside the settings file (which need not exist)."""
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), NAME)


def read(path: str) -> dict[str, str] | None:
    """The variables in ``path`` (in file order), or None when it does not exist."""
    try:
        raw = fileio.read_bytes(path)
    except PermissionError:
        raise EnvFileError(f"{path}: cannot read (permission denied)") from None
    except OSError as e:
        raise EnvFileError(f"{path}: cannot read ({e.strerror})") from None
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvFileError(f"{path}: not UTF-8 text") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = _LINE.match(line)
        if not m:
            raise EnvFileError(f"{path}: line {number}: not NAME=value (got {line[:60]!r})")
        name, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]  # a hand-quoted value, as systemd accepts it
        out[name] = value
    return out


def render(variables: dict[str, str]) -> bytes:
    """The file's content; raises ValueError for a value that would need quoting."""
    lines = [HEADER]
    for name, value in variables.items():
        if not SAFE_VALUE.match(value):
            raise ValueError(f"{name}: value cannot be kept in {NAME} (got {value!r})")
        lines.append(f"{name}={value}\n")
    return "".join(lines).encode()


def write(path: str, variables: dict[str, str]) -> bool:
    """Replace the file atomically (0600); False when it already held exactly this."""
    return fileio.atomic_write(path, render(variables), mode=0o600).changed
