from __future__ import annotations

import json
import os

import pytest

from k3snode.k3s import flags

REFERENCE = "/work/shared/reference/k3s-flags.json"


def test_flag_lists_match_k3s_counts():
    # k3s.md: `k3s server` 126 flags, `k3s agent` 46, one agent-only (disable-apiserver-lb).
    assert len(flags.flags("server")) == 126
    assert len(flags.flags("agent")) == 46
    assert set(flags.flags("agent")) - set(flags.flags("server")) == {"disable-apiserver-lb"}


@pytest.mark.skipif(not os.path.exists(REFERENCE), reason="reference copy not on this machine")
def test_packaged_list_is_the_reference():
    with open(REFERENCE) as f:
        ref = json.load(f)
    assert flags.flags("server") == ref["server"] and flags.flags("agent") == ref["agent"]


@pytest.mark.parametrize(
    "key", ["flannel-backend", "flannel-external-ip", "tls-san", "cluster-init"]
)
def test_server_only_keys_refused_on_agents(key):
    with pytest.raises(flags.OptionError, match="`k3s server` flag only"):
        flags.check("agent", key, "x")


def test_unknown_key():
    with pytest.raises(flags.OptionError, match="not a flag of `k3s server`"):
        flags.check("server", "no-such-flag", "x")


def test_shapes():
    assert flags.check("agent", "node-label", "a=b") == ["a=b"]
    assert flags.check("agent", "node-label", ["a=b", "c=d"]) == ["a=b", "c=d"]
    assert flags.check("server", "https-listen-port", 6443) == 6443
    assert flags.check("server", "etcd-s3-timeout", "5m30s") == "5m30s"
    assert flags.check("server", "flannel-external-ip", True) is True
    for role, key, bad in [
        ("server", "flannel-external-ip", "true"),
        ("server", "https-listen-port", "6443"),
        ("server", "https-listen-port", True),
        ("server", "etcd-s3-timeout", "soon"),
        ("agent", "node-label", []),
        ("agent", "node-label", [{"a": 1}]),
        ("agent", "node-name", ["a", "b"]),
        ("agent", "node-name", True),
    ]:
        with pytest.raises(flags.OptionError):
            flags.check(role, key, bad)


def test_an_unknown_option_gets_a_did_you_mean_from_k3s_flag_list():
    with pytest.raises(flags.OptionError, match=r"\(did you mean node-label\?\)"):
        flags.check("agent", "node-labels", ["a=b"])
    with pytest.raises(flags.OptionError) as e:
        flags.check("server", "entirely-unrelated-thing", "x")
    assert "did you mean" not in str(e.value)
