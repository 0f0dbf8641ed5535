"""The one "did you mean" of k3snode: the closest known word to a mistyped one.

``difflib`` is imported when a hint is computed, not with this module: the CLI imports this module
on every command's start-up path, and difflib (with heapq) costs ≈ 1–1.5 ms of import that a
command without a mistake should not pay. Each lookup compares the word with every candidate
(≈ 0.8 ms against K3s's 126 server flags): callers that may meet many unknown words at once bound
how many get a hint (``k3s/flags.py``, ``Keys``).
"""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (difflib's ratio ≥ ``cutoff``), or None."""
    import difflib

    hint = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return hint[0] if hint else None


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean X?)`` for the closest candidate, or "" when none is close."""
    hint = closest(word, candidates, cutoff)
    return f" (did you mean {hint}?)" if hint else ""
