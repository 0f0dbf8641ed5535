"""K3s's own flag list per role, and the check every config.yaml key must pass.

``data/k3s-flags.json`` is K3s's flag list per role, taken from K3s's ``pkg/cli/cmds``:
``{"server": {name: type}, "agent": {name: type}}``. ``k3s agent`` dies on any key it does not know
("flag provided but not defined"), so nothing reaches an agent's config that is not in its list.

A file of the user's may hold many keys K3s does not know (measured: 3000 made ``k3snode apply``
spend 2.5 s, and the daemon as much on every pass, in "did you mean" lookups): ``Keys`` checks a
file's keys with at most ``MAX_HINTS`` lookups and problems for unknown keys, and counts the rest
for one "… and N more" line.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from typing import Any

from k3snode import suggest

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
MAX_HINTS = 3  # unknown keys of one file reported one by one, each with its "did you mean"


class OptionError(ValueError):
    """A K3s option that the role does not have, or a value of the wrong shape."""


class Unknown(OptionError):
    """A key that neither ``k3s server`` nor ``k3s agent`` knows."""


@cache
def flags(role: str) -> dict[str, str]:
    """``{flag-name: type}`` for ``k3s <role>``; types: string, bool, int, string slice, duration."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "k3s-flags.json")
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f)[role])


def check(role: str, key: str, value: Any, hint: bool = True) -> Any:
    """Return ``value`` in the shape K3s expects for ``key`` on ``role``, or raise OptionError
    (``Unknown`` for a key neither role knows: with a "did you mean" unless ``hint`` is false).

    A slice flag given one string becomes a one-item list; bools must be bools, ints ints.
    """
    table = flags(role)
    kind = table.get(key)
    if kind is None:
        other = "agent" if role == "server" else "server"
        if key in flags(other):
            raise OptionError(f"is a `k3s {other}` flag only; `k3s {role}` does not know it")
        more = suggest.did_you_mean(key, table, cutoff=0.7) if hint else ""
        raise Unknown(f"is not a flag of `k3s {role}`{more}")
    if kind == "string slice":
        items = (
            [value]
            if isinstance(value, (str, int, float)) and not isinstance(value, bool)
            else value
        )
        if not isinstance(items, list) or not items or not all(_is_scalar(i) for i in items):
            raise OptionError(f"must be a list of strings (got {value!r})")
        return [str(i) for i in items]
    if kind == "bool":
        if not isinstance(value, bool):
            raise OptionError(f"must be true or false (got {value!r})")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(f"must be an integer (got {value!r})")
        return value
    if kind == "duration":
        if not isinstance(value, str) or not _DURATION.match(value):
            raise OptionError(f"must be a duration such as 30s or 5m (got {value!r})")
        return value
    if not _is_scalar(value) or isinstance(value, bool):
        raise OptionError(f"must be a single string (got {value!r})")
    return str(value)


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


class Keys:
    """``check`` over many keys (a file's): ``problem`` says what is wrong with one key, for the
    first ``MAX_HINTS`` unknown keys with a "did you mean"; later unknown keys get no lookup and
    no problem of their own, only a count (``more``) for one closing line."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.unknown = 0

    def problem(self, key: str, value: Any) -> str | None:
        try:
            check(self.role, key, value, hint=self.unknown < MAX_HINTS)
        except Unknown as e:
            self.unknown += 1
            return str(e) if self.unknown <= MAX_HINTS else None
        except OptionError as e:
            return str(e)
        return None

    @property
    def more(self) -> str | None:
        """``… and N more keys `k3s ROLE` does not know``, or None when all were reported."""
        n = self.unknown - MAX_HINTS
        if n <= 0:
            return None
        return f"… and {n} more key{'s' if n > 1 else ''} `k3s {self.role}` does not know"
