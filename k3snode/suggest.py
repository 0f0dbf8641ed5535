"""The one "did you mean …?" for every mistyped name (a setting, a section, a command, a flag,
a K3s option, a provider): ``difflib``'s closest match, worded the same everywhere."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(
    word: str, candidates: Iterable[str], cutoff: float = 0.6, quote: bool = False
) -> str:
    """`` (did you mean X?)`` for the closest of ``candidates`` to ``word``, or "" when none is
    close (``cutoff`` as in ``difflib.get_close_matches``); ``quote`` shows X as ``'X'``."""
    hint = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    if not hint:
        return ""
    shown = repr(hint[0]) if quote else hint[0]
    return f" (did you mean {shown}?)"
