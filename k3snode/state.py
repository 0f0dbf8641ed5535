"""k3snode's own memory across runs, in ``<state_dir>/state.json``.

- ``managed``: per K3s config path, the keys k3snode wrote last time — so that a key it no longer
  needs (after switching mesh, say) is removed while every key the user wrote stays.
- ``role``: the role last applied, so that a role nobody named (K3s's default) never silently
  turns an agent into a server (``pipeline.check_role``).

The file is opened without following a symbolic link and must be a regular file holding exactly
this shape. ``load`` raises StateError on anything else; ``load_or_recover`` (the write path)
logs one line and starts from an empty state marked ``damaged``, whose managed keys the caller
rebuilds from the marker block of K3s's config — a damaged file never wedges the daemon.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from typing import Any

from k3snode import bounded, fileio
from k3snode.record import field, record

VERSION = 1
MAX_BYTES = 1024 * 1024  # a few KiB in practice

log = logging.getLogger(__name__)
_warned: set[str] = set()


@record(frozen=False)
class State:
    """What k3snode remembers between runs (state.json): the keys it manages and the role applied."""

    managed: dict[str, list[str]] = field(default_factory=dict)
    role: str = ""
    damaged: str | None = None  # why the file on disk could not be used (recovered from)


class StateError(Exception):
    pass


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StateError(f"{path}: is a symbolic link, not k3snode's state file") from None
        raise StateError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise StateError(f"{path}: is {what}, not k3snode's state file")
        if st.st_size > MAX_BYTES:
            raise StateError(f"{path}: larger than {MAX_BYTES} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_BYTES + 1)
    except OSError as e:
        raise StateError(f"{path}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError("managed keys must be lists of strings")
    return list(value)


def load(path: str) -> State:
    raw = _read(path)
    if raw is None:
        return State()
    try:
        data = bounded.load_json(raw.decode("utf-8"), bounded.Bounds(max_bytes=MAX_BYTES))
        if not isinstance(data, dict):
            raise ValueError("not an object")
        managed_raw = data.get("managed", {})
        if not isinstance(managed_raw, dict):
            raise ValueError("managed must be an object")
        managed = {str(k): _string_list(v) for k, v in managed_raw.items()}
        role = data.get("role", "")
        if not isinstance(role, str):
            raise ValueError("role must be a string")
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as e:
        # k3snode wrote this file atomically, so damage means someone else touched it.
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise StateError(
            f"{path}: unreadable state ({reason}); remove it to start afresh"
        ) from None
    return State(managed=managed, role=role)


def load_or_recover(path: str) -> State:
    """``load``, or an empty State marked ``damaged`` after one warning line (once per reason)."""
    try:
        return load(path)
    except StateError as e:
        text = str(e).replace("; remove it to start afresh", "")
        if text not in _warned:
            _warned.add(text)
            log.warning("warning: %s; rebuilding it from the K3s config's managed block", text)
        return State(damaged=text)


def save(path: str, state: State) -> bool:
    data: dict[str, Any] = {
        "version": VERSION,
        "managed": state.managed,
    }
    if state.role:
        data["role"] = state.role
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return fileio.atomic_write(path, text.encode(), mode=0o600).changed
