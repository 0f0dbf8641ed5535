"""The one "did you mean" of k3snode: the closest known word to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (difflib's ratio ≥ ``cutoff``), or None."""
    hint = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return hint[0] if hint else None


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean X?)`` for the closest candidate, or "" when none is close."""
    hint = closest(word, candidates, cutoff)
    return f" (did you mean {hint}?)" if hint else ""
