"""``k3snode.suggest``: the closest word, and difflib imported only when a hint is computed."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import clean_env

from k3snode import suggest


def test_closest_and_did_you_mean():
    assert suggest.closest("hostnam", ["hostname", "tag"]) == "hostname"
    assert suggest.closest("zzz", ["hostname", "tag"]) is None
    assert suggest.did_you_mean("provder", ["provider", "timeout"]) == " (did you mean provider?)"
    assert suggest.did_you_mean("entirely-else", ["provider"]) == ""


def test_difflib_is_imported_only_for_a_hint():
    """The CLI imports this module on every command's start-up path: difflib and heapq are
    ≈ 1–1.5 ms of import that a command without a mistake does not need."""
    code = (
        "import json, sys\n"
        "from k3snode import cli, suggest\n"
        "before = 'difflib' in sys.modules\n"
        "suggest.closest('aply', ['apply'])\n"
        "print(json.dumps([before, 'difflib' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=clean_env(), check=True)  # fmt: skip
    assert json.loads(out.stdout) == [False, True]
