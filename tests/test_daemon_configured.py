"""``k3snode run`` on a node nothing has configured yet, and settings mistakes at reload: a real
process in a network namespace, a real notify socket, the real health endpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from daemon_node import make_node
from helpers import REPO, clean_env, wait_for

pytestmark = pytest.mark.netns


def _status(message: str) -> str:
    return dict(line.split("=", 1) for line in message.split("\n") if "=" in line)["STATUS"]


def reload_cmd(node, *args: str) -> subprocess.CompletedProcess:
    """``k3snode reload`` as the unit's ExecReload runs it (with $MAINPID)."""
    return subprocess.run(
        [sys.executable, "-m", "k3snode", "reload", "--config", node.settings_file,
         "--pid", str(node.proc.pid), *args],
        env=clean_env(), capture_output=True, text=True, cwd=REPO, timeout=30,
    )  # fmt: skip


def test_not_configured_node_is_ready_writes_nothing_and_proceeds_after_reload(tmp_path):
    with make_node(tmp_path, role="", health_port=-1) as node:
        node.start(wait_ready=False)
        ready = node.notify.wait("READY=1")
        assert _status(ready).startswith("not configured: no role, server URL or cluster_init")
        assert "K3S_URL" in _status(ready) and "systemctl reload k3snode" in _status(ready)
        code, body = node.http("/healthz")
        assert code == 503
        health = json.loads(body)
        assert health["status"] == "not-configured"
        assert [c["detail"] for c in health["checks"]] == [_status(ready)]
        out = node.status()
        assert out.returncode == 0 and out.stdout.startswith("state:        not configured;")
        assert _status(ready) in out.stdout
        assert node.status_json()["configured"] is False
        assert node.read_config() == "" and node.calls() == []
        # Settings appear; `systemctl reload` (ExecReload: k3snode reload --pid $MAINPID).
        node.role = "server"
        node.write_settings()
        r = reload_cmd(node)
        assert r.returncode == 0, r.stderr
        assert "settings are good (configured: server)" in r.stdout
        node.wait_external(["5.6.7.8"])
        wait_for(lambda: node.http("/healthz")[0] == 200, 10, what="healthy")
        reloaded = node.notify.wait("READY=1\nSTATUS=server, mesh none: 5.6.7.8")
        assert node.notify.messages.index(reloaded) > node.notify.messages.index(ready)
        assert node.status_json()["configured"] is True
        assert node.stop() == 0


def test_reload_with_a_typo_fails_and_the_daemon_keeps_and_shows_it(tmp_path):
    with make_node(tmp_path, health_port=-1) as node:
        node.start()
        node.wait_external(["5.6.7.8"])
        before = node.read_config()
        node.write_settings('[tailscale]\nhostnam = "edge-7"\n')
        r = reload_cmd(node)
        assert r.returncode == 2
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert "unknown key [tailscale] hostnam (did you mean hostname?)" in r.stderr
        assert "keeps its previous settings" in r.stderr
        wait_for(lambda: node.http("/healthz")[0] == 503, 10, what="the error in /healthz")
        detail = {c["check"]: c["detail"] for c in json.loads(node.http("/healthz")[1])["checks"]}
        assert "unknown key [tailscale] hostnam" in detail["settings"]
        assert "running on the previous settings" in detail["settings"]
        st = node.status_json()
        assert "settings: " in st["summary"] and "hostnam" in st["summary"]
        assert node.read_config() == before and node.proc.poll() is None
        # Fixed: the next reload clears it.
        node.write_settings()
        assert reload_cmd(node).returncode == 0
        wait_for(lambda: node.http("/healthz")[0] == 200, 10, what="healthy again")
        assert node.stop() == 0


def test_sighup_into_not_configured_writes_nothing_more(tmp_path):
    with make_node(tmp_path, health_port=-1) as node:
        node.start()
        node.wait_external(["5.6.7.8"])
        before = node.read_config()
        node.role = ""
        node.write_settings()
        node.signal(signal.SIGHUP)
        wait_for(lambda: node.http("/healthz")[0] == 503, 10, what="503")
        # state.json remembers a server and the role is K3s's default server again: plain state.
        st = node.status_json()
        assert st["health"]["status"] == "not-configured" and st["configured"] is False
        assert node.read_config() == before
        assert node.stop() == 0


def test_node_last_applied_as_agent_is_not_made_a_server(tmp_path):
    """The daemon at boot on a node whose saved settings are gone: the role refusal, degraded."""
    with make_node(tmp_path, role="", health_port=-1) as node:
        with open(f"{node.root}/var/lib/k3snode/state.json", "w") as f:
            json.dump({"version": 1, "managed": {}, "role": "agent"}, f)
        with open(node.config, "w") as f:
            f.write("server: https://10.0.0.1:6443\ntoken-file: /t\n")
        node.start(wait_ready=False)
        ready = node.notify.wait("READY=1")
        assert _status(ready).startswith("degraded (settings: ")
        assert "last applied as agent" in _status(ready) and "nothing written" in _status(ready)
        code, body = node.http("/healthz")
        assert code == 503 and json.loads(body)["status"] == "degraded"
        assert node.read_config() == "server: https://10.0.0.1:6443\ntoken-file: /t\n"
        assert node.stop() == 0
