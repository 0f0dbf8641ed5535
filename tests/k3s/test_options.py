"""Every role × mesh renders exactly what K3s needs (k3s.md §2–§4, §9), checked against K3s's flags."""

from __future__ import annotations

import pytest

from k3snode.config.checks import MESHES
from k3snode.config.load import load
from k3snode.k3s import flags, options

V4, V6 = "172.233.211.141", "2600:1900::1"


def make(root, *, role, mesh, over=None):
    auth = root / "ts.key"
    auth.write_text("tskey-auth-abc123\n")
    token = root / "token"
    token.write_text("K10secret\n")
    values = {
        ("node", "role"): role,
        ("node", "mesh"): mesh,
        ("paths", "state_dir"): str(root / "state"),
        ("tailscale", "auth_key_file"): str(auth),
    }
    if role == "agent":
        values[("k3s", "server")] = "https://k3s.example.com:6443"
        values[("k3s", "token_file")] = str(token)
    values.update(over or {})
    cfg = root / "config.toml"
    cfg.touch()
    return load(str(cfg), env={}, overrides=values)


EXPECTED = {
    ("server", "wireguard-native"): {
        "node-external-ip": [V4, V6],
        "flannel-backend": "wireguard-native",
        "flannel-external-ip": True,
    },
    ("server", "tailscale"): {"node-external-ip": [V4, V6], "vpn-auth-file": "VPN"},
    ("server", "none"): {"node-external-ip": [V4, V6]},
    ("agent", "wireguard-native"): {
        "node-external-ip": [V4, V6],
        "server": "https://k3s.example.com:6443",
        "token-file": "TOKEN",
    },
    ("agent", "tailscale"): {
        "node-external-ip": [V4, V6],
        "server": "https://k3s.example.com:6443",
        "token-file": "TOKEN",
        "vpn-auth-file": "VPN",
    },
    ("agent", "none"): {
        "node-external-ip": [V4, V6],
        "server": "https://k3s.example.com:6443",
        "token-file": "TOKEN",
    },
}


@pytest.mark.parametrize(("role", "mesh"), sorted(EXPECTED))
def test_role_by_mesh(tmp_path, role, mesh):
    s = make(tmp_path, role=role, mesh=mesh)
    got = options.render(s, [V6, V4])  # order given is v6 first: output must be v4 first
    expected = {
        k: (
            str(tmp_path / "state" / "vpn-auth")
            if v == "VPN"
            else str(tmp_path / "token")
            if v == "TOKEN"
            else v
        )
        for k, v in EXPECTED[(role, mesh)].items()
    }
    assert got == expected
    for key, value in got.items():  # every key is a flag of the role, in K3s's shape
        assert flags.check(role, key, value) == value


def test_agent_never_gets_server_only_keys(tmp_path):
    for mesh in MESHES:
        s = make(tmp_path, role="agent", mesh=mesh)
        assert set(options.render(s, [V4])) <= set(flags.flags("agent"))


def test_single_stack_and_no_address(tmp_path):
    s = make(tmp_path, role="server", mesh="none")
    assert options.render(s, [V6]) == {"node-external-ip": [V6]}
    assert options.render(s, []) == {}


def test_first_and_joining_server(tmp_path):
    first = make(
        tmp_path, role="server", mesh="wireguard-native", over={("k3s", "cluster_init"): True}
    )
    assert options.render(first, [V4])["cluster-init"] is True
    join = make(
        tmp_path,
        role="server",
        mesh="wireguard-native",
        over={
            ("k3s", "server"): "https://10.0.0.1:6443",
            ("k3s", "token_file"): "/etc/k3snode/token",
        },
    )
    got = options.render(join, [V4])
    assert got["server"] == "https://10.0.0.1:6443" and got["token-file"] == "/etc/k3snode/token"
    assert "cluster-init" not in got


def test_token_from_environment_becomes_a_file_reference(tmp_path):
    (tmp_path / "config.toml").touch()
    s = load(
        str(tmp_path / "config.toml"),
        env={"K3S_URL": "https://k3s.example.com:6443", "K3S_TOKEN": "K10secret"},
        overrides={("paths", "state_dir"): str(tmp_path)},
    )
    got = options.render(s, [V4])
    assert got["token-file"] == str(tmp_path / "token")
    assert "K10secret" not in repr(got) and "token" not in got


def test_node_name_underlay_and_passthrough(tmp_path):
    s = make(
        tmp_path,
        role="server",
        mesh="wireguard-native",
        over={
            ("k3s", "node_name"): "edge-1",
            ("k3s", "options"): {"node-label": "zone=eu", "tls-san": ["k3s.example.com"]},
        },
    )
    got = options.render(s, [V4], underlay_ip="10.99.0.1")
    assert got["node-name"] == "edge-1"
    assert got["node-ip"] == ["10.99.0.1"]
    assert got["node-external-ip"] == [V4]
    assert got["node-label"] == ["zone=eu"]  # a slice flag given a string becomes a list
    assert got["tls-san"] == ["k3s.example.com"]


@pytest.mark.parametrize(
    ("role", "mesh", "key", "value", "message"),
    [
        ("agent", "none", "flannel-backend", "vxlan", "`k3s server` flag only"),
        ("agent", "none", "tls-san", ["a"], "`k3s server` flag only"),
        ("server", "none", "no-such-flag", "x", "not a flag of `k3s server`"),
        ("server", "none", "token", "x", "never written inline"),
        ("server", "none", "vpn-auth", "x", "never written inline"),
        ("server", "none", "node-external-ip", ["8.8.8.8"], "managed by k3snode"),
        ("server", "wireguard-native", "flannel-backend", "vxlan", "managed by k3snode"),
        ("server", "tailscale", "flannel-external-ip", True, "must not be set"),
        ("server", "none", "https-listen-port", "6443", "must be an integer"),
    ],
)
def test_user_options_checked(role, mesh, key, value, message):
    with pytest.raises(ValueError, match=message):
        options.check_user_option(role, mesh, key, value)


REG = {
    ("registration", "name"): "k3s.example.com",
    ("registration", "server"): "192.0.2.53",
    ("registration", "key_file"): "/etc/k3snode/tsig.key",
}


def test_a_server_with_a_registration_name_has_it_in_tls_san(tmp_path):
    s = make(tmp_path, role="server", mesh="wireguard-native", over=REG)
    out = options.render(s, [V4])
    assert out["tls-san"] == ["k3s.example.com"]
    assert flags.check("server", "tls-san", out["tls-san"]) == ["k3s.example.com"]


def test_the_users_own_sans_stay_and_the_name_comes_once(tmp_path):
    over = {**REG, ("k3s", "options"): {"tls-san": ["api.example.com", "k3s.example.com"]}}
    s = make(tmp_path, role="server", mesh="none", over=over)
    assert options.render(s, [V4])["tls-san"] == ["api.example.com", "k3s.example.com"]
    over = {**REG, ("k3s", "options"): {"tls-san": "api.example.com"}}
    s = make(tmp_path, role="server", mesh="none", over=over)
    assert options.render(s, [V4])["tls-san"] == ["api.example.com", "k3s.example.com"]


def test_an_agent_never_gets_tls_san_from_the_registration_name(tmp_path):
    # tls-san is server-only: K3s's agent dies on it (k3s.md §2).
    s = make(tmp_path, role="agent", mesh="wireguard-native", over=dict(REG))
    assert "tls-san" not in options.render(s, [V4])
    s = make(tmp_path, role="server", mesh="none")
    assert "tls-san" not in options.render(s, [V4])
