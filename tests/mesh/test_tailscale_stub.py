"""The stub ``tailscale`` against Tailscale's own expectations: the cases of upstream's
``TestCheckForAccidentalSettingReverts`` (tailscale/tailscale de9ec7ee
``cmd/tailscale/cli/cli_test.go``; a logged-in profile, Running unless said otherwise) replayed
through the stub's CLI, and the state machine the k3snode tests lean on. If the stub drifted from
the real CLI here, the bring-up tests would prove nothing."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from tailscale_stub import TailscaleStub

PREFIX = (
    "Error: changing settings via 'tailscale up' requires mentioning all\n"
    "non-default flags. To proceed, either re-run your command with --reset or\n"
    "use the command below to explicitly mention the current value of\n"
    "all non-default settings:\n\n"
    "\ttailscale up"
)
DEFAULT_URL = "https://controlplane.tailscale.com"


@pytest.fixture
def stub(tmp_path):
    return TailscaleStub.create(tmp_path)


def seeded(stub, backend_state="Running", **prefs):
    """A logged-in node ("janet") with these prefs; ``NeedsLogin``: its node key gone."""
    stub.control(daemon="running", backend_state="Running")
    assert stub.cli("status", "--json").returncode == 0  # writes the seed
    state = json.loads((stub.dir / "state.json").read_text())
    state["prefs"].update(prefs)
    state["login_name"] = "janet"
    if backend_state == "NeedsLogin":
        state["node_key"] = False
    (stub.dir / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    ("name", "flags", "prefs", "backend_state", "want"),
    [
        ("bare_up_means_up", [], {"WantRunning": False, "Hostname": "foo"}, "Running", ""),
        ("bare_up_needs_login_losing_prefs", [], {"CorpDNS": False}, "NeedsLogin",
         " --accept-dns=false"),
        ("losing_hostname", ["--accept-dns"], {"WantRunning": False, "Hostname": "foo"},
         "Running", " --accept-dns --hostname=foo"),
        ("hostname_changing_explicitly", ["--hostname=bar"], {"Hostname": "foo"}, "Running", ""),
        ("hostname_changing_empty_explicitly", ["--hostname="], {"Hostname": "foo"}, "Running",
         ""),
        ("up_with_default_prefs", ["--authkey=foosdlkfjskdljf"], {"ControlURL": ""}, "Running",
         ""),
        ("error_advertised_routes_exit_node_removed", ["--advertise-routes=10.0.42.0/24"],
         {"AdvertiseRoutes": ["10.0.42.0/24", "0.0.0.0/0", "::/0"]}, "Running",
         " --advertise-routes=10.0.42.0/24 --advertise-exit-node"),
        ("advertised_routes_exit_node_removed_explicit",
         ["--advertise-routes=10.0.42.0/24", "--advertise-exit-node=false"],
         {"AdvertiseRoutes": ["10.0.42.0/24", "0.0.0.0/0", "::/0"]}, "Running", ""),
        # What K3s's flannel leaves behind, then an `up` that does not mention it.
        ("k3s_routes_dropped", ["--auth-key=file:/k", "--timeout=30s"],
         {"RouteAll": True, "AdvertiseRoutes": ["10.42.0.0/24"]}, "NeedsLogin",
         " --auth-key=file:/k --timeout=30s --accept-routes --advertise-routes=10.42.0.0/24"),
        ("k3s_routes_reset", ["--reset", "--auth-key=file:/k"],
         {"RouteAll": True, "AdvertiseRoutes": ["10.42.0.0/24"]}, "NeedsLogin", ""),
    ],
)  # fmt: skip
def test_revert_check_as_upstream(stub, name, flags, prefs, backend_state, want):
    seeded(stub, backend_state, **prefs)
    res = stub.cli("up", *flags)
    if want:
        assert res.returncode == 1
        assert res.stderr.strip() == (PREFIX + want).strip()
    else:
        assert "requires mentioning all" not in res.stderr, res.stderr


def test_set_and_debug_prefs_as_k3s_uses_them(stub):
    seeded(stub)
    assert stub.cli("set", "--accept-routes", "--advertise-routes=10.42.0.0/24").returncode == 0
    prefs = stub.prefs()
    assert prefs["RouteAll"] is True and prefs["AdvertiseRoutes"] == ["10.42.0.0/24"]
    assert prefs["Config"]["UserProfile"]["LoginName"] == "janet"
    assert stub.cli("set", "--advertise-routes=").returncode == 0  # what k3s-killall.sh runs
    prefs = stub.prefs()
    assert prefs["AdvertiseRoutes"] is None and prefs["RouteAll"] is True
    bad = stub.cli("set", "--advertise-routes=10.42.0.1/24")
    assert bad.returncode == 1 and "non-address bits" in bad.stderr


def test_states_and_a_restart_of_tailscaled(stub, tmp_path):
    """NoState until the netmap after tailscaled starts; prefs survive its restart."""
    stub.control(keys={"k": "ok"}, netmap_after=60)
    assert stub.cli("status").returncode == 1  # not running yet
    daemon = subprocess.Popen([str(stub.bin / "tailscaled")], env=stub.env())
    try:
        for _ in range(100):
            if (stub.dir / "tailscaled.run").exists():
                break
            time.sleep(0.05)
        assert stub.status()["BackendState"] == "NeedsLogin"  # never logged in: at once
        state = json.loads((stub.dir / "state.json").read_text())
        state.update(node_key=True, login_name="janet")
        state["prefs"].update(ControlURL=DEFAULT_URL, WantRunning=True, RouteAll=True)
        (stub.dir / "state.json").write_text(json.dumps(state))
        assert stub.status()["BackendState"] == "NoState"  # logged in, waiting for the netmap
        stub.cli("down")
        assert stub.status()["BackendState"] == "Stopped"  # at once, netmap or not
    finally:
        daemon.terminate()
        daemon.wait(10)
    assert stub.cli("status", "--json").returncode == 1  # tailscaled gone
    assert json.loads((stub.dir / "state.json").read_text())["prefs"]["RouteAll"] is True
