"""``k3snode status``'s human view, from a status file as the daemon writes it."""

from __future__ import annotations

from k3snode.commands.status import describe

NOW = 1_800_000_000.0

STATUS = {
    "pid": 4242,
    "started": NOW - 3600,
    "ready": True,
    "role": "agent",
    "mesh": "wireguard-native",
    "provider": "aws",
    "k3s_config": "/etc/rancher/k3s/config.yaml",
    "k3s_unit": "k3s-agent.service",
    "k3s_state": "k3s-agent.service is active (running)",
    "addresses": [
        {"address": "203.0.113.7", "family": "ipv4", "source": "metadata"},
        {"address": "2001:db8::7", "family": "ipv6", "source": "interface"},
    ],
    "candidate": None,
    "last_change": {"time": NOW - 125, "from": ["198.51.100.1"], "to": ["203.0.113.7"]},
    "last_restart": {
        "time": NOW - 120,
        "unit": "k3s-agent.service",
        "outcome": "restarted",
        "detail": "k3s-agent.service is active (running)",
        "duration": 3.2,
    },
    "restart_pending": False,
    "health": {
        "status": "degraded",
        "checks": [
            {"check": "discovery", "state": "ok", "detail": "203.0.113.7 (metadata)",
             "changed": NOW - 3590},
            {"check": "wireguard:flannel-wg", "state": "failing", "since": NOW - 300,
             "detail": "flannel-wg: 1 of 2 peers stale"},
        ],
    },
    "peers": [],
}  # fmt: skip


def _rows(text: str) -> dict[str, str]:
    return {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if not line.startswith(" ") and ":" in line
    }


def test_status_says_state_node_addresses_and_sources_last_change_and_restart():
    text = describe(STATUS, now=NOW)
    rows = _rows(text)
    assert rows["state"] == "degraded (wireguard:flannel-wg); running for 60 min 0 s (pid 4242)"
    assert rows["node"] == "agent, mesh wireguard-native"
    assert rows["addresses"] == "203.0.113.7 (metadata, aws), 2001:db8::7 (interface)"
    assert rows["last change"] == "2 min 5 s ago: 198.51.100.1 -> 203.0.113.7"
    assert rows["last restart"].startswith("2 min 0 s ago: restarted after 3.2 s")
    assert rows["K3s"] == "k3s-agent.service is active (running)"


def test_each_check_has_its_state_and_age():
    lines = describe(STATUS, now=NOW).splitlines()
    checks = lines[lines.index("checks:") + 1 :]
    assert checks[0].split()[:5] == ["discovery", "ok", "for", "59", "min"]
    assert "failing for 5 min 0 s" in checks[1] and "1 of 2 peers stale" in checks[1]


def test_a_daemon_still_starting_and_nothing_changed_yet():
    d = {**STATUS, "ready": False, "last_change": None, "last_restart": None, "addresses": []}
    rows = _rows(describe(d, now=NOW))
    assert rows["state"].startswith("starting;")
    assert rows["addresses"] == "none yet"
    assert rows["last change"] == "none since start"
    assert rows["last restart"] == "none since start"
