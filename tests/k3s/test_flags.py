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


def _counting_lookups(monkeypatch) -> list[str]:
    """Every difflib lookup "did you mean" makes (difflib, not k3snode, is wrapped)."""
    import difflib

    words: list[str] = []
    real = difflib.get_close_matches

    def counted(word, *args, **kw):
        words.append(word)
        return real(word, *args, **kw)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    return words


def test_a_file_of_3000_unknown_keys_costs_three_lookups_and_four_lines(monkeypatch, tmp_path):
    """Measured before: `k3snode apply` on a K3s config with 3000 keys K3s does not know spent
    2.5 s (and the daemon as much every pass) looking up a "did you mean" for each, and printed
    3000 warnings."""
    from k3snode.k3s import configfile

    lookups = _counting_lookups(monkeypatch)
    path = tmp_path / "config.yaml"
    path.write_text("".join(f"node-labels-{i}: x\n" for i in range(3000)))
    plan = configfile.plan(str(path), {"server": "https://a.example:6443"}, set(), "agent")
    assert lookups == ["node-labels-0", "node-labels-1", "node-labels-2"]
    assert plan.warnings == (
        *(f"{path}: your key 'node-labels-{i}' is not a flag of `k3s agent` (did you mean "
          "node-label?); K3s may refuse to start" for i in range(3)),
        f"{path}: … and 2997 more keys `k3s agent` does not know; K3s may refuse to start",
    )  # fmt: skip


def test_keys_reports_every_wrong_value_and_the_first_unknown_keys(monkeypatch):
    lookups = _counting_lookups(monkeypatch)
    keys = flags.Keys("server")
    got = [
        keys.problem(k, v)
        for k, v in [
            ("no-such-1", "x"),
            ("https-listen-port", "6443"),  # a wrong value: always reported, no lookup
            ("no-such-2", "x"),
            ("disable-apiserver-lb", True),  # agent-only: reported, no lookup
            ("no-such-3", "x"),
            ("no-such-4", "x"),
            ("node-label", "a=b"),
            ("https-listen-port", True),
        ]
    ]
    assert [p is not None for p in got] == [True, True, True, True, True, False, False, True]
    assert lookups == ["no-such-1", "no-such-2", "no-such-3"]
    assert keys.more == "… and 1 more key `k3s server` does not know"
    assert flags.Keys("agent").more is None
