"""k3snode's own memory across runs, in ``<state_dir>/state.json``.

- ``managed``: per K3s config path, the keys k3snode wrote last time — so that a key it no longer
  needs (after switching mesh, say) is removed while every key the user wrote stays.
- ``last_good``: the last discovery that produced addresses, so a failed pass keeps what worked.
- ``role``: the role last applied, so that a role nobody named (K3s's default) never silently
  turns an agent into a server (``reconcile.check_role``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from k3snode import fileio

VERSION = 1


@dataclass
class State:
    managed: dict[str, list[str]] = field(default_factory=dict)
    last_good: dict[str, Any] = field(default_factory=dict)
    role: str = ""


class StateError(Exception):
    pass


def load(path: str) -> State:
    raw = fileio.read_bytes(path)
    if raw is None:
        return State()
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
        managed = {str(k): [str(x) for x in v] for k, v in dict(data.get("managed", {})).items()}
        last_good = dict(data.get("last_good", {}))
        role = str(data.get("role", ""))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # k3snode wrote this file atomically, so damage means someone else touched it.
        raise StateError(f"{path}: unreadable state ({e}); remove it to start afresh") from None
    return State(managed=managed, last_good=last_good, role=role)


def save(path: str, state: State) -> bool:
    data: dict[str, Any] = {
        "version": VERSION,
        "managed": state.managed,
        "last_good": state.last_good,
    }
    if state.role:
        data["role"] = state.role
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return fileio.atomic_write(path, text.encode(), mode=0o600).changed
