"""k3snode and K3s taking turns with Tailscale: the real ``k3snode apply`` as a process, the stub
``tailscale``/``tailscaled`` (Tailscale's state machine, revert check, ``set``, ``debug prefs``,
prefs kept across a restart of tailscaled) and the stub ``k3s`` doing what K3s does to Tailscale
at start (``tailscale up --reset …`` unless Running, then flannel's ``tailscale set --accept-routes
--advertise-routes=…``).

Upstream references: k3s-io/k3s 66a14f0e ``pkg/vpn/vpn.go`` (StartVPN, getVPNAuthInfo,
processCLIArgs), ``pkg/agent/flannel/setup.go`` (the tailscale backend's PostStartupCommand),
``pkg/executor/embed/embed.go`` (node-ip replaced, since f891548e); tailscale/tailscale de9ec7ee
``cmd/tailscale/cli/up.go`` (checkForAccidentalSettingReverts), ``ipn/ipnlocal/local.go``
(nextStateLocked: NoState until the first netmap).
"""

from __future__ import annotations

import pytest
import yaml
from helpers import run_k3snode
from tailscale_stub import KEY, TailscaleStub, write_settings

POD_ROUTE = "10.42.0.0/24"


@pytest.fixture
def stub(tmp_path):
    s = TailscaleStub.create(tmp_path)
    yield s
    s.stop_daemon()


def apply(stub, cfg, *args):
    return run_k3snode("apply", "--config", str(cfg), *args, env=stub.env(), timeout=120)


def ups(stub):
    return [c["argv"] for c in stub.calls("tailscale") if c["argv"][:1] == ["up"]]


def first_boot_then_k3s(stub, tmp_path, **settings):
    """Boot 1: k3snode logs the node in (starting tailscaled itself), then K3s starts and its
    flannel backend advertises the pod CIDR and turns on accept-routes."""
    cfg = write_settings(tmp_path, **settings)
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    k3s = stub.k3s(tmp_path / "etc/rancher/k3s/config.yaml")
    assert k3s["returncode"] == 0, k3s
    assert k3s["vpn"]["up"] is None  # Running: K3s skipped its own up
    assert k3s["vpn"]["set"] == ["set", "--accept-routes", f"--advertise-routes={POD_ROUTE}"]
    prefs = stub.prefs()
    assert prefs["RouteAll"] is True and prefs["AdvertiseRoutes"] == [POD_ROUTE]
    return cfg


# --- point 1: a node that has run K3s survives its next boot ---------------------------------


def test_second_boot_waits_out_nostate_and_leaves_k3s_settings_alone(stub, tmp_path):
    """Fails before this branch: at the second boot tailscaled says NoState until its first
    netmap, and k3snode ran ``tailscale up --auth-key=… --timeout=…`` (no --reset) in it, which
    Tailscale refuses after K3s's flannel backend set accept-routes and advertise-routes
    (checkForAccidentalSettingReverts, tailscale de9ec7ee cmd/tailscale/cli/up.go;
    PostStartupCommand, k3s 66a14f0e pkg/agent/flannel/setup.go)."""
    stub.control(keys={KEY: "ok"}, netmap_after=2)
    cfg = first_boot_then_k3s(stub, tmp_path)
    stub.reboot()
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    assert "NoState" in res.stderr and "already up" in res.stderr
    assert len(ups(stub)) == 1  # only the first boot's login
    assert stub.prefs()["AdvertiseRoutes"] == [POD_ROUTE]
    assert stub.k3s(tmp_path / "etc/rancher/k3s/config.yaml")["vpn"]["up"] is None


def test_stopped_after_k3s_ran_resumes_with_a_bare_up(stub, tmp_path):
    """Fails before this branch: ``tailscale down`` (Stopped) after K3s ran, and k3snode's
    ``tailscale up --auth-key=… --timeout=…`` was refused (checkForAccidentalSettingReverts,
    tailscale de9ec7ee up.go); only a bare ``tailscale up`` resumes without naming every setting."""
    stub.control(keys={KEY: "ok"})
    cfg = first_boot_then_k3s(stub, tmp_path)
    assert stub.cli("down").returncode == 0
    stub.reboot()
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    assert ups(stub)[-1] == ["up"]
    prefs = stub.prefs()
    assert prefs["WantRunning"] is True and prefs["RouteAll"] is True
    assert prefs["AdvertiseRoutes"] == [POD_ROUTE]


def test_logged_out_after_k3s_ran_logs_in_keeping_k3s_routes(stub, tmp_path):
    """Fails before this branch: after K3s ran, a logged-out node (NeedsLogin) got ``tailscale up
    --auth-key=… --timeout=…`` without --reset, refused for accept-routes/advertise-routes
    (tailscale de9ec7ee up.go). Now: ``--reset`` (as K3s's StartVPN, k3s 66a14f0e
    pkg/vpn/vpn.go) plus the two settings flannel made, read from ``tailscale debug prefs``, so
    the pod routes stay advertised and K3s's next start changes nothing."""
    stub.control(keys={KEY: "ok"})
    cfg = first_boot_then_k3s(stub, tmp_path, hostname="edge-7")
    assert stub.cli("logout").returncode == 0
    res = apply(stub, cfg)
    assert res.returncode == 0, res.stderr
    assert ups(stub)[-1] == [
        "up", "--reset", f"--auth-key=file:{tmp_path}/ts.key", "--timeout=5s",
        "--hostname=edge-7", "--accept-routes", f"--advertise-routes={POD_ROUTE}",
    ]  # fmt: skip
    after_k3snode = stub.prefs()
    assert after_k3snode["AdvertiseRoutes"] == [POD_ROUTE] and after_k3snode["RouteAll"] is True
    assert stub.status()["Self"]["HostName"] == "edge-7"
    k3s = stub.k3s(tmp_path / "etc/rancher/k3s/config.yaml")
    assert k3s["vpn"]["up"] is None
    after_k3s = stub.prefs()
    assert after_k3s == after_k3snode  # neither undoes the other


def test_nostate_that_never_settles_is_one_line_and_no_login(stub, tmp_path):
    """A control server that never answers: NoState for good. Bounded wait, one line, exit 1,
    and no ``tailscale up`` thrown at a node that may well be logged in."""
    stub.control(daemon="running", backend_state="NoState", keys={KEY: "ok"})
    res = apply(stub, write_settings(tmp_path, timeout=1))
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "did not settle within 1s (BackendState NoState" in errors[0]
    assert ups(stub) == []
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()


# --- point 2: K3s's own `tailscale up --reset` keeps k3snode's hostname and extra args --------


def test_k3s_own_up_keeps_hostname_and_extra_args(stub, tmp_path):
    """Fails before this branch: K3s runs ``tailscale up --authkey K --timeout=30s --reset
    [--login-server U] [extraArgs…]`` whenever the node is not Running (k3s 66a14f0e
    pkg/vpn/vpn.go StartVPN), and vpn-auth carried no extraArgs, so --reset dropped k3snode's
    --hostname and extra args. They now travel as the last field, ``,extraArgs=`` (split on
    whitespace, processCLIArgs), with ``,`` and ``=`` inside."""
    stub.control(keys={KEY: "ok"})
    extra = ["--advertise-tags=tag:k3s,tag:edge", "--accept-dns=false"]
    cfg = write_settings(tmp_path, hostname="edge-7", extra_args=extra)
    assert apply(stub, cfg).returncode == 0
    line = (tmp_path / "var/lib/k3snode/vpn-auth").read_text()
    assert line == (
        f"name=tailscale,joinKey={KEY},extraArgs=--hostname=edge-7 "
        "--advertise-tags=tag:k3s,tag:edge --accept-dns=false\n"
    )
    stub.cli("logout")  # K3s now finds the node not Running and logs in itself
    k3s = stub.k3s(tmp_path / "etc/rancher/k3s/config.yaml")
    assert k3s["returncode"] == 0, k3s
    assert k3s["vpn"]["up"] == [
        "up", "--authkey", "********", "--timeout=30s", "--reset", "--hostname=edge-7",
        "--advertise-tags=tag:k3s,tag:edge", "--accept-dns=false",
    ]  # fmt: skip
    assert stub.status()["Self"]["HostName"] == "edge-7"
    prefs = stub.prefs()
    assert prefs["AdvertiseTags"] == ["tag:k3s", "tag:edge"] and prefs["CorpDNS"] is False
    assert prefs["AdvertiseRoutes"] == [POD_ROUTE]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('["--advertise-tags=tag:a tag:b"]', "without whitespace"),
        ('["hostname=x"]', "one flag"),
        ('["--auth-key=tskey-x"]', "must not carry an auth key"),
    ],
)
def test_extra_args_k3s_cannot_carry_are_a_settings_mistake(stub, tmp_path, extra, words):
    cfg = write_settings(tmp_path)
    cfg.write_text(cfg.read_text() + f"extra_args = {extra}\n")
    res = apply(stub, cfg)
    assert res.returncode == 2, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "[tailscale] extra_args" in line and words in line, line
    assert stub.calls() == []


# --- point 3: mesh tailscale + server underlay ---------------------------------------------


def test_tailscale_mesh_with_server_underlay_is_refused(stub, tmp_path):
    """Fails before this branch (accepted): since k3s f891548e a VPN provider replaces node-ip
    with the Tailscale addresses before the server reads its config (pkg/executor/embed/embed.go
    New; pkg/cli/server/server.go PrivateIP from node-ip), so etcd peers over Tailscale and the
    underlay's node-ip never takes effect."""
    cfg = write_settings(tmp_path)
    cfg.write_text(cfg.read_text() + '[underlay]\nenabled = true\naddress = "10.99.0.1/24"\n')
    res = apply(stub, cfg)
    assert res.returncode == 2, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "[underlay] enabled" in line and "mesh 'tailscale'" in line and "etcd" in line
    assert stub.calls() == []
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()


def test_tailscale_mesh_with_agent_underlay_is_accepted(stub, tmp_path):
    """No etcd on an agent: an underlay there may still carry its way to the servers' API."""
    stub.control(daemon="running", backend_state="Running")
    cfg = write_settings(tmp_path)
    text = cfg.read_text().replace('role = "server"', 'role = "agent"')
    token = tmp_path / "token"
    token.write_text("K10x\n")
    text = text.replace(
        "[k3s]\n", f'[k3s]\nserver = "https://10.99.0.1:6443"\ntoken_file = "{token}"\n'
    )
    cfg.write_text(text + '[underlay]\nenabled = true\naddress = "10.99.0.7/24"\n')
    res = run_k3snode("render", "--config", str(cfg), env=stub.env())
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout)["server"] == "https://10.99.0.1:6443"


# --- point 7: Tailscale's version floor ----------------------------------------------------


@pytest.mark.parametrize("version", ["1.20.4", "1.32.3-t0123abcd-g0123456789"])
def test_too_old_tailscale_is_one_line_before_anything_runs(stub, tmp_path, version):
    """Fails before this branch: no version check; ``--auth-key`` exists since Tailscale 1.22
    (tailscale 94409db7), ``file:`` since 1.16 (b822b5c7), and ``tailscale set`` — which K3s's
    flannel backend runs (k3s 66a14f0e pkg/agent/flannel/setup.go) — since 1.34 (19b55865)."""
    stub.control(daemon="running", version=version, keys={KEY: "ok"})
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, res.stderr
    assert f"Tailscale {version} is too old" in errors[0] and "1.34 or later" in errors[0]
    assert ups(stub) == []
    check = run_k3snode("check", "--config", str(write_settings(tmp_path)), env=stub.env())
    assert f"Tailscale {version} is too old" in check.stdout + check.stderr


def test_current_tailscale_passes_the_floor(stub, tmp_path):
    stub.control(daemon="running", version="1.34.0", backend_state="Running")
    res = apply(stub, write_settings(tmp_path))
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())[
        "node-external-ip"
    ] == ["100.64.0.5", "fd7a:115c:a1e0::5"]
