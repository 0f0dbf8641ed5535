"""The registries are lists of functions (no "module:function" strings): the daemon's observers
and ``k3snode check``'s preflights, each listed once and named after where it lives."""

from __future__ import annotations

import pytest

from k3snode.commands.check import PREFLIGHTS
from k3snode.config.load import load
from k3snode.health import registry
from k3snode.health.checks import Finding, Observation
from k3snode.k3s import overrides
from k3snode.mesh.tailscale import health as tailscale_health
from k3snode.mesh.underlay import checks as underlay_checks
from k3snode.mesh.wg import health as wg_health


def test_observers_are_the_components_functions():
    got = registry.observers()
    assert got[0] is tailscale_health.observe
    assert isinstance(got[1], wg_health.Flannel)
    assert got[2:] == (overrides.observe,), "the daemon judges its own underlay keeper's passes"
    assert registry.observers()[1] is not got[1], "each daemon gets its own stateful observers"
    names = [registry.name(o) for o in got]
    assert names == [
        "k3snode.mesh.tailscale.health:observe",
        "k3snode.mesh.wg.health:Flannel",
        "k3snode.k3s.overrides:observe",
    ]


@pytest.mark.parametrize("observe", registry.observers(), ids=registry.name)
def test_each_observer_answers_observations_for_a_plain_node(observe, tmp_path):
    settings = load(None, env={"K3SNODE_ROLE": "server", "K3SNODE_MESH": "none"})
    got = observe(settings)
    assert isinstance(got, list)
    assert all(isinstance(o, Observation) for o in got)


def test_preflights_are_listed_once_in_print_order():
    assert len(set(PREFLIGHTS)) == len(PREFLIGHTS) == 8
    assert PREFLIGHTS[0].__module__ == "k3snode.preflight", "the settings come first"
    assert underlay_checks.preflight in PREFLIGHTS and tailscale_health.preflight in PREFLIGHTS


def test_each_preflight_answers_findings_for_a_plain_node():
    settings = load(None, env={"K3SNODE_ROLE": "server", "K3SNODE_MESH": "none"})
    topics = []
    for check in PREFLIGHTS:
        got = check(settings)
        assert isinstance(got, list) and all(isinstance(f, Finding) for f in got), check
        topics += [f.topic for f in got]
    assert {"settings", "k3s", "discovery"} <= set(topics), "a component that is off says nothing"
