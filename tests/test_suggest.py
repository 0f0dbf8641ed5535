"""The one "did you mean" helper."""

from __future__ import annotations

from k3snode.suggest import did_you_mean


def test_closest_candidate_or_nothing():
    ids = ["aws", "gcp", "azure", "hetzner"]
    assert did_you_mean("hetzer", ids) == " (did you mean hetzner?)"
    assert did_you_mean("hetzer", ids, quote=True) == " (did you mean 'hetzner'?)"
    assert did_you_mean("kubernetes", ids) == ""
    assert did_you_mean("azre", iter(ids), cutoff=0.9) == ""  # any iterable; a stricter cutoff
