"""Tailscale's health: the observer on the stub's ``tailscale status --json`` (peers online/offline,
last seen, expired and rejected keys), and ``k3snode check`` (``k3snode/mesh/tailscale/health.py``)."""

from __future__ import annotations

import calendar
import json
import time

import pytest
from helpers import run_k3snode
from tailscale_stub import KEY, TailscaleStub, write_settings

from k3snode.commands.check import PREFLIGHTS
from k3snode.config.load import load
from k3snode.health.registry import observers
from k3snode.mesh.tailscale import health

PEERS = [
    {"HostName": "server-1", "DNSName": "server-1.tail1234.ts.net.", "Online": True,
     "CurAddr": "198.51.100.7:41641", "LastHandshake": "2026-11-26T16:59:30.123456789Z",
     "RxBytes": 1200, "TxBytes": 3400, "TailscaleIPs": ["100.64.1.1", "fd7a:115c:a1e0::1:1"]},
    {"HostName": "agent-2", "DNSName": "agent-2.tail1234.ts.net.", "Online": False,
     "Relay": "fra", "LastSeen": "2026-11-26T15:00:00Z"},
]  # fmt: skip


def T(text):
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


@pytest.fixture
def stub(tmp_path, monkeypatch):
    s = TailscaleStub.create(tmp_path)
    env = s.env()
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("TAILSCALE_STUB_DIR", env["TAILSCALE_STUB_DIR"])
    return s


def settings_for(tmp_path, **kw):
    return load(str(write_settings(tmp_path, **kw)), env={})


def observe(tmp_path, now=None, **kw):
    s = settings_for(tmp_path, **kw)
    (obs,) = health.observe(s, now=(lambda: now) if now else time.time)
    return obs


def test_registered_as_an_observer_and_a_preflight():
    assert health.observe in observers()
    assert health.preflight in PREFLIGHTS


def test_running_with_peers_online_and_offline(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running", peers=PEERS,
                 key_expiry="2027-06-01T00:00:00Z")  # fmt: skip
    obs = observe(tmp_path, now=T("2026-11-18T00:00:00Z"))
    assert obs.ok and obs.check == "tailscale"
    assert (
        "1/2 peers online" in obs.detail
        and "offline: agent-2.tail1234.ts.net last seen 2026-11-26T15:00:00Z)" in obs.detail
    )
    assert obs.facts["addresses"] == "100.64.0.5,fd7a:115c:a1e0::5"
    assert obs.facts["key_expiry"] == "2027-06-01T00:00:00Z"
    agent, server = obs.peers  # sorted by host name
    assert server.name == "server-1.tail1234.ts.net" and server.online and not server.stale
    assert server.endpoint == "198.51.100.7:41641" and server.rx_bytes == 1200
    assert server.last_handshake == pytest.approx(T("2026-11-26T16:59:30Z") + 0.123456789)
    assert server.interface == "tailscale0" and server.last_seen is None
    assert agent.online is False and agent.stale and agent.endpoint == "derp:fra"
    assert agent.last_seen == T("2026-11-26T15:00:00Z")
    assert agent.last_handshake is None


def test_key_expiring_soon_is_mentioned(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running", key_expiry="2026-11-28T00:00:00Z")
    obs = observe(tmp_path, now=T("2026-11-26T16:00:00Z"))
    assert obs.ok and "node key expires 2026-11-28T00:00:00Z" in obs.detail


def test_expired_node_key_reported_as_such(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin", self_expired=True,
                 key_expiry="2026-10-01T00:00:00Z")  # fmt: skip
    obs = observe(tmp_path)
    assert not obs.ok and obs.facts["problem"] == "key-expired"
    assert "key expired at 2026-10-01T00:00:00Z" in obs.detail


def test_rejected_auth_key_reported_and_scrubbed(stub, tmp_path):
    stub.control(daemon="running", keys={})
    res = run_k3snode("apply", "--config", str(write_settings(tmp_path)), env=stub.env())
    assert res.returncode == 1  # the stub's control server refused the key (and echoed it)
    obs = observe(tmp_path)
    assert not obs.ok and obs.facts["problem"] == "auth-key-rejected"
    assert "rejected the auth key" in obs.detail and "not valid" in obs.detail
    assert KEY not in obs.detail and KEY not in json.dumps(obs.facts)


def test_logged_out_and_daemon_down(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin")
    obs = observe(tmp_path)
    assert not obs.ok and obs.detail.startswith("BackendState NeedsLogin: logged out")
    assert obs.peers == ()
    stub.control(daemon="stopped")
    obs = observe(tmp_path)
    assert not obs.ok and "doesn't appear to be running" in obs.detail


@pytest.mark.parametrize("garbage", ["", "<html>502 Bad Gateway</html>", '{"Peer": {}}', "[1, 2]"])
def test_unreadable_status_is_reported_not_raised(stub, tmp_path, garbage):
    stub.control(daemon="running", status_output=garbage)
    obs = observe(tmp_path)
    assert not obs.ok and "unreadable answer" in obs.detail


def test_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tailscale anywhere
    obs = observe(tmp_path)
    assert not obs.ok and obs.detail == "tailscale is not installed"


def test_other_meshes_observe_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[node]\nmesh = "wireguard-native"\n')
    assert health.observe(load(str(cfg), env={})) == []
    assert health.preflight(load(str(cfg), env={})) == []


# --- k3snode check ------------------------------------------------------------------------------


def check(stub, tmp_path, **kw):
    cfg = write_settings(tmp_path, **kw)
    return run_k3snode("check", "--config", str(cfg), "--json", env=stub.env())


def findings(res):
    return [(f["level"], f["message"]) for f in json.loads(res.stdout) if f["topic"] == "tailscale"]


def test_check_all_good(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running")
    res = check(stub, tmp_path)
    assert res.returncode == 0, res.stdout
    levels = [lvl for lvl, _ in findings(res)]
    assert levels == ["ok"] * 4
    assert any("Running as stub-node" in m for _, m in findings(res))


def test_check_loose_key_file_and_logged_out(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin")
    cfg = write_settings(tmp_path)
    (tmp_path / "ts.key").chmod(0o644)
    res = run_k3snode("check", "--config", str(cfg), "--json", env=stub.env())
    got = findings(res)
    assert ("warning", f"auth key file {tmp_path}/ts.key is mode 0644; make it 0600 "
            f"(chmod 600 {tmp_path}/ts.key)") in got  # fmt: skip
    assert any(lvl == "warning" and "NeedsLogin" in m for lvl, m in got)
    assert res.returncode == 0  # warnings only


def test_check_key_k3s_cannot_parse(stub, tmp_path):
    stub.control(daemon="running", backend_state="Running")
    res = check(stub, tmp_path, key="tskey-auth-a=b")
    assert res.returncode != 0
    assert "tskey-auth-a=b" not in res.stdout + res.stderr


def test_check_expired_key_is_an_error(stub, tmp_path):
    stub.control(daemon="running", backend_state="NeedsLogin", self_expired=True)
    res = check(stub, tmp_path)
    assert res.returncode == 1
    assert any(lvl == "error" and "key expired" in m for lvl, m in findings(res))


def test_check_not_installed(tmp_path):
    stub = TailscaleStub.create(tmp_path, installed=False)
    res = check(stub, tmp_path, install=False)
    assert res.returncode == 1
    assert ("error", "tailscale is not installed and [tailscale] install = false") in findings(res)
    res = check(stub, tmp_path)
    assert any(lvl == "warning" and "apply will install it" in m for lvl, m in findings(res))
