"""The Tailscale version floor (``k3snode/mesh/tailscale/version.py``): ``tailscale version``
output parsed, and the one-line complaint below 1.34."""

from __future__ import annotations

import pytest

from k3snode.mesh.tailscale import version


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1.90.3\n  tailscale commit: abc\n", (1, 90, 3)),
        ("1.32.3-t0123abcd-g0123456789\n", (1, 32, 3)),
        ("1.22\n", (1, 22, 0)),
        ("v1.34.0", (1, 34, 0)),
        ("", None),
        ("tailscale: unknown", None),
    ],
)
def test_parse_version(text, want):
    assert version.parse_version(text) == want


def test_floor_is_1_34():
    assert version.too_old((1, 34, 0), "1.34.0") is None
    assert version.too_old((2, 0, 0), "2.0.0") is None
    msg = version.too_old((1, 33, 9), "1.33.9")
    assert msg and msg.startswith("Tailscale 1.33.9 is too old") and "\n" not in msg
