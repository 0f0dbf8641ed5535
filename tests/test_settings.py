"""Settings: precedence file < environment < flags, and a clear one-line error for every mistake."""

from __future__ import annotations

import os

import pytest

from k3snode.cli import main
from k3snode.config import load as config_load
from k3snode.config.model import SettingsError, as_dict
from k3snode.config.schema import SCHEMA, schema_rows

V4 = "172.233.211.141"


def load(path, env=None, overrides=None):
    return config_load.load(str(path), env=env or {}, overrides=overrides)


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = config_load.load(None, env={"K3SNODE_CONFIG": ""})
    assert s.role == "server" and s.mesh == "wireguard-native"
    assert s.k3s.unit == "k3s" and s.k3s.config == "/etc/rancher/k3s/config.yaml"
    assert s.paths.state_dir == "/var/lib/k3snode" and s.health.listen == "127.0.0.1"


def test_file_env_flag_precedence(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[node]\nmesh = "none"\n[k3s]\nserver = "https://file.example:6443"\n'
        'token_file = "/etc/k3snode/token"\n[discovery]\nexternal_ips = ["8.8.8.8"]\n'
    )
    s = load(cfg)
    assert s.k3s.server == "https://file.example:6443" and s.role == "agent"
    assert s.k3s.unit == "k3s-agent" and s.mesh == "none"
    assert s.origins["k3s.server"] == f"{cfg}: [k3s] server"
    s = load(cfg, env={"K3S_URL": "https://env.example:6443", "K3SNODE_MESH": "tailscale",
                       "K3SNODE_TAILSCALE_AUTH_KEY_FILE": "/k"})  # fmt: skip
    assert s.k3s.server == "https://env.example:6443" and s.mesh == "tailscale"
    assert s.origins["k3s.server"] == "environment K3S_URL"
    s = load(
        cfg,
        env={"K3S_URL": "https://env.example:6443"},
        overrides={("k3s", "server"): "https://flag.example:6443"},
    )
    assert s.k3s.server == "https://flag.example:6443"


def test_installer_variables(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.touch()
    s = load(cfg, env={"K3S_URL": "https://a.example:6443", "K3S_TOKEN": "K10abc",
                       "K3S_NODE_NAME": "edge-7"})  # fmt: skip
    assert s.role == "agent" and s.k3s.node_name == "edge-7"
    assert s.k3s.token.reveal() == "K10abc"
    assert "K10abc" not in repr(s) and "K10abc" not in str(as_dict(s))
    assert s.token_path == os.path.join(s.paths.state_dir, "token")
    # A token file from a higher layer replaces an inline token from a lower one.
    s = load(cfg, env={"K3S_URL": "https://a.example:6443", "K3S_TOKEN": "K10abc"},
             overrides={("k3s", "token_file"): "/run/secrets/token"})  # fmt: skip
    assert s.token_path == "/run/secrets/token" and s.k3s.token is None


def test_external_ips_normalised_v4_first(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[discovery]\nexternal_ips = ["2600:1900:0000::0001", "8.8.8.8"]\n')
    s = load(cfg)
    assert s.discovery.external_ips == ("8.8.8.8", "2600:1900::1")
    assert s.discovery.static_ipv4 == "8.8.8.8" and s.discovery.static_ipv6 == "2600:1900::1"


def test_dropin_path_and_unit_suffix(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[k3s]\nconfig = "/etc/rancher/k3s/config.yaml.d/90-k3snode.yaml"\nunit = "k3s.service"\n'
    )
    s = load(cfg)
    assert s.k3s.config.endswith("config.yaml.d/90-k3snode.yaml") and s.k3s.unit == "k3s"


def test_underlay_peers_parsed(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[underlay]\nenabled = true\naddress = '10.99.0.1/24'\n"
        "[[underlay.peers]]\npublic_key = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='\n"
        "endpoint = 's2.example.com:51822'\naddress = '10.99.0.2'\nkeepalive = 15\n"
    )
    s = load(cfg)
    (peer,) = s.underlay.peers
    assert peer.endpoint == "s2.example.com:51822" and peer.address == "10.99.0.2"
    assert peer.keepalive == 15


# --- every mistake: exit 2, one line naming where, the key and the value; nothing written ---------

BAD_FILES = [
    ('[k3ss]\nserver = "https://a:6443"\n', ["unknown section [k3ss]", "did you mean [k3s]"]),
    ('[k3s]\nsever = "https://a:6443"\n', ["unknown key [k3s] sever", "did you mean server"]),
    ('role = "server"\n', ["unknown key 'role'", "did you mean [node] role"]),
    ('[node]\nrole = "master"\n', ["[node] role", "server or agent", "'master'"]),
    ('[node]\nmesh = "wireguard"\n', ["[node] mesh", "did you mean 'wireguard-native'", "'wireguard'"]),
    ('[k3s]\nserver = "k3s.example.com"\n', ["[k3s] server", "https://host:port", "'k3s.example.com'"]),
    ('[k3s]\nserver = "http://k3s:6443"\n', ["[k3s] server", "https://host:port", "'http://k3s:6443'"]),
    ('[k3s]\nserver = "https://k3s"\n', ["[k3s] server", "https://host:port", "'https://k3s'"]),
    ('[k3s]\nserver = "https://k3s:99999"\n', ["[k3s] server", "'https://k3s:99999'"]),
    ('[discovery]\nexternal_ips = ["1.2.3"]\n', ["[discovery] external_ips", "not an IP address", "1.2.3"]),
    ('[discovery]\nexternal_ips = ["8.8.8.8", "1.1.1.1"]\n', ["[discovery] external_ips", "one IPv4", "8.8.8.8"]),
    ('[discovery]\nexternal_ips = [8]\n', ["[discovery] external_ips", "list of strings", "[8]"]),
    ('[node]\nrole = "agent"\n[k3s]\ntoken_file = "/t"\n', ["[node] role", "needs a server URL", "'agent'"]),
    ('[node]\nrole = "agent"\n[k3s]\nserver = "https://a:6443"\n', ["[node] role", "needs a token", "'agent'"]),
    ('[k3s]\nserver = "https://a:6443"\ntoken_file = "/t"\ncluster_init = true\n', ["[k3s] cluster_init", "only a server"]),
    ('[k3s]\ntoken_file = "token"\n', ["[k3s] token_file", "absolute path", "'token'"]),
    ('[k3s]\nserver = "https://a:6443"\n', ["[k3s] server", "agent needs a token", "'agent'"]),
    ('[k3s\nserver = 1\n', ["invalid TOML"]),
    ('[node]\nrole = "agent"\nmesh = "none"\n[k3s]\nserver = "https://a:6443"\ntoken_file = "/t"\n[k3s.options]\nflannel-backend = "vxlan"\n',
     ["[k3s.options] flannel-backend", "`k3s server` flag only", "'vxlan'"]),
    ('[k3s.options]\nnot-a-flag = "x"\n', ["[k3s.options] not-a-flag", "not a flag of `k3s server`", "'x'"]),
    ('[k3s.options]\nnode-label = {a = 1}\n', ["[k3s.options] node-label", "list of strings"]),
    ('[k3s.options]\ntoken = "K10secret"\n', ["[k3s.options] token", "never written inline"]),
    ('[k3s.options]\nnode-external-ip = ["8.8.8.8"]\n', ["[k3s.options] node-external-ip", "managed by k3snode"]),
    ('[k3s.options]\nhttps-listen-port = "6443"\n', ["[k3s.options] https-listen-port", "integer", "'6443'"]),
    ('[k3s.options]\nkubelet-arg = true\n', ["[k3s.options] kubelet-arg", "list of strings", "True"]),
    ('[node]\nmesh = "tailscale"\n', ["[node] mesh", "auth_key_file", "'tailscale'"]),
    ("[discovery]\ntimeout = -1\n", ["[discovery] timeout", "between", "-1"]),
    ("[health]\nport = 70000\n", ["[health] port", "between", "70000"]),
    ('[discovery]\nprovider = "amazon"\n', ["[discovery] provider", "'amazon'"]),
    ('[k3s]\nnode_name = "Bad_Name"\n', ["[k3s] node_name", "DNS name", "'Bad_Name'"]),
    ('[discovery]\nmetadata_endpoint = "169.254.169.254"\n', ["[discovery] metadata_endpoint", "http://host"]),
    ("[underlay]\nenabled = true\n", ["[underlay] enabled", "needs [underlay] address"]),
    ("[underlay]\naddress = '10.99.0.1'\n", ["[underlay] address", "prefix length", "'10.99.0.1'"]),
    ("[[underlay.peers]]\npublic_key = 'nope'\nendpoint = 'a:1'\naddress = '10.99.0.2'\n",
     ["[underlay] peers", "not a WireGuard key", "'nope'"]),
    ("[[underlay.peers]]\npubkey = 'x'\n", ["[underlay] peers", "unknown key 'pubkey'", "did you mean 'public_key'"]),
    ("[daemon]\ndebounce = 'soon'\n", ["[daemon] debounce", "number", "'soon'"]),
    ("[tailscale]\ninstall = 'maybe'\n", ["[tailscale] install", "true or false", "'maybe'"]),
    # booleans in the file are TOML booleans only: no strings, no numbers
    ('[k3s]\ncluster_init = "yes"\n', ["[k3s] cluster_init", "a TOML boolean, without quotes", "'yes'"]),
    ('[k3s]\ncluster_init = "true"\n', ["[k3s] cluster_init", "a TOML boolean", "'true'"]),
    ("[k3s]\ncluster_init = 1\n", ["[k3s] cluster_init", "a TOML boolean", "1"]),
]  # fmt: skip

BAD_ENV = [
    ({"K3S_URL": "k3s.example.com:6443"}, ["environment K3S_URL", "https://host:port"]),
    ({"K3SNODE_ROLE": "worker"}, ["environment K3SNODE_ROLE", "'worker'"]),
    ({"K3SNODE_MSH": "none"}, ["environment K3SNODE_MSH", "not a k3snode setting", "K3SNODE_MESH"]),
    ({"K3S_TOKEN": "a", "K3S_TOKEN_FILE": "/t"}, ["K3S_TOKEN or K3S_TOKEN_FILE, not both"]),
    ({"K3SNODE_EXTERNAL_IPS": "1.1.1.1,8.8.8.8"}, ["environment K3SNODE_EXTERNAL_IPS", "one IPv4"]),
    ({"K3SNODE_DISCOVERY_ECHO": "perhaps"}, ["environment K3SNODE_DISCOVERY_ECHO", "'perhaps'"]),
    (
        {"K3SNODE_K3S_CLUSTER_INIT": "yes"},
        ["environment K3SNODE_K3S_CLUSTER_INIT", "also 1 or 0", "'yes'"],
    ),
]

BAD_FLAGS = [
    (["--external-ip", "1.2.3"], ["--external-ip", "not an IP address", "1.2.3"]),
    (["--server", "https://a"], ["--server", "https://host:port", "'https://a'"]),
    (["--token-file", "rel/token"], ["--token-file", "absolute path"]),
    (["--role", "agent"], ["needs a server URL"]),
    (["--k3s-config", "/etc/rancher/k3s/config.yaml.d/50-x.conf", "--external-ip", "8.8.8.8"],
     ["--k3s-config", "*.yaml", "50-x.conf"]),
]  # fmt: skip


def run_cli(capsys, root, *args, env=None, monkeypatch=None):
    for k in list(os.environ):
        if k.startswith(("K3S_", "K3SNODE_")):
            monkeypatch.delenv(k)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    rc = main(
        [
            "apply",
            "--state-dir", str(root / "var/lib/k3snode"),
            "--k3s-config", str(root / "etc/rancher/k3s/config.yaml"),
            *args,
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_failure(rc, out, err, fragments, root):
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("k3snode: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err
    assert not (root / "etc/rancher/k3s/config.yaml").exists()
    assert not (root / "var/lib/k3snode/state.json").exists()


@pytest.mark.parametrize(("text", "fragments"), BAD_FILES)
def test_bad_settings_file(root, capsys, monkeypatch, text, fragments):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text(text)
    ip = [] if "external_ips" in text else ["--external-ip", V4]
    rc, out, err = run_cli(capsys, root, "--config", str(cfg), *ip, monkeypatch=monkeypatch)
    if "invalid TOML" not in fragments:
        assert str(cfg) in err
    assert_clean_failure(rc, out, err, fragments, root)


@pytest.mark.parametrize(("env", "fragments"), BAD_ENV)
def test_bad_environment(root, capsys, monkeypatch, env, fragments):
    empty = root / "etc/k3snode/config.toml"
    empty.touch()
    ip = [] if "K3SNODE_EXTERNAL_IPS" in env else ["--external-ip", V4]
    rc, out, err = run_cli(capsys, root, "--config", str(empty), *ip, env=env,
                           monkeypatch=monkeypatch)  # fmt: skip
    assert_clean_failure(rc, out, err, fragments, root)


@pytest.mark.parametrize(("args", "fragments"), BAD_FLAGS)
def test_bad_flags(root, capsys, monkeypatch, args, fragments):
    empty = root / "etc/k3snode/config.toml"
    empty.touch()
    rc, out, err = run_cli(capsys, root, "--config", str(empty), *args, monkeypatch=monkeypatch)
    assert_clean_failure(rc, out, err, fragments, root)


def test_missing_explicit_settings_file(root, capsys, monkeypatch):
    rc, out, err = run_cli(capsys, root, "--config", str(root / "nope.toml"),
                           monkeypatch=monkeypatch)  # fmt: skip
    assert_clean_failure(rc, out, err, ["--config", "nope.toml", "does not exist"], root)


def test_settings_file_is_a_directory(root, capsys, monkeypatch):
    rc, out, err = run_cli(capsys, root, "--config", str(root / "etc"), monkeypatch=monkeypatch)
    assert_clean_failure(rc, out, err, ["is a directory"], root)


def test_secret_value_never_echoed(root, capsys, monkeypatch):
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text('[k3s.options]\ntoken = "K10supersecret"\n')
    rc, out, err = run_cli(capsys, root, "--config", str(cfg), monkeypatch=monkeypatch)
    assert rc == 2 and "never written inline" in err
    # The value of an inline secret is shown (it is the user's own file), but never a Secret's.
    empty = root / "etc/k3snode/empty.toml"
    empty.touch()
    rc, out, err = run_cli(capsys, root, "--config", str(empty), "--role", "agent",
                           env={"K3S_TOKEN": "K10supersecret"}, monkeypatch=monkeypatch)  # fmt: skip
    assert rc == 2 and "K10supersecret" not in err + out


def test_tailscale_key_with_comma_refused(root, capsys, monkeypatch):
    key = root / "ts.key"
    key.write_text("tskey-auth-a,b=c\n")
    cfg = root / "etc/k3snode/config.toml"
    cfg.write_text(f'[node]\nmesh = "tailscale"\n[tailscale]\nauth_key_file = "{key}"\n')
    rc, out, err = run_cli(capsys, root, "--config", str(cfg), "--external-ip", V4,
                           monkeypatch=monkeypatch)  # fmt: skip
    assert_clean_failure(rc, out, err, ["[tailscale] auth_key_file", "','", "vpn-auth"], root)
    assert "tskey-auth-a" not in err


def test_catalogue_is_large_enough():
    assert len(BAD_FILES) + len(BAD_ENV) + len(BAD_FLAGS) >= 40


def test_schema_rows_cover_every_setting():
    rows = schema_rows()
    assert len(rows) == len(SCHEMA)
    assert all(help_text for _, _, _, help_text in rows)
    with pytest.raises(SettingsError):
        config_load.load("/nonexistent/k3snode.toml", env={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_environment_booleans_are_true_false_1_0(value, expected):
    s = config_load.load("/dev/null", env={"K3SNODE_DISCOVERY_ECHO": value})
    assert s.discovery.echo is expected


def test_file_booleans_are_toml_booleans(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[k3s]\ncluster_init = true\n[discovery]\necho = false\n")
    s = config_load.load(str(path), env={})
    assert s.k3s.cluster_init is True and s.discovery.echo is False
