"""What ``tailscale up`` is told (``k3snode/mesh/tailscale/up_args.py``): the login command, the
identity, and the vpn-auth line read back the way K3s reads it (k3s-io/k3s 66a14f0e ``pkg/vpn/vpn.go``
``getVPNAuthInfo``/``processCLIArgs``)."""

from __future__ import annotations

import random

import pytest

from k3snode.config.load import load
from k3snode.config.model import SettingsError
from k3snode.k3s.vpn_auth import VPNAuthError, vpn_auth_line
from k3snode.mesh.tailscale import up_args


def k3s_reads(line: str) -> dict:
    """What K3s makes of the vpn-auth file (util.ReadFile trims; then processCLIArgs and the
    split on ``,`` and ``=``)."""
    head, sep, tail = line.strip().partition(",extraArgs=")
    out = {"extra": tail.split() if sep else []}
    for item in head.split(","):
        kv = item.split("=")
        out[kv[0]] = kv[1]
    return out


def _settings(tmp_path, **ts):
    key = tmp_path / "ts.key"
    key.write_text("tskey-auth-x\n")
    lines = ["[node]", 'mesh = "tailscale"', "[tailscale]", f'auth_key_file = "{key}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in ts.items()]
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    return load(str(path), env={})


def test_login_args_put_k3s_routes_before_the_users_extra_args(tmp_path):
    s = _settings(tmp_path, hostname="edge-7", extra_args=["--accept-routes=false"],
                  control_server_url="https://hs.example")  # fmt: skip
    args = up_args.login_args(s, ["--accept-routes", "--advertise-routes=10.42.0.0/24"])
    assert args == [
        "up",
        "--reset",
        f"--auth-key=file:{tmp_path}/ts.key",
        "--timeout=60s",
        "--login-server=https://hs.example",
        "--hostname=edge-7",
        "--accept-routes",
        "--advertise-routes=10.42.0.0/24",
        "--accept-routes=false",
    ]  # fmt: skip  (Go's flag package: the last value wins, so the user's choice stands)
    assert up_args.identity_args(s) == ["--hostname=edge-7", "--accept-routes=false"]


def test_extra_args_from_the_environment_split_on_whitespace(tmp_path):
    key = tmp_path / "ts.key"
    key.write_text("tskey-auth-x\n")
    env = {
        "K3SNODE_MESH": "tailscale",
        "K3SNODE_TAILSCALE_AUTH_KEY_FILE": str(key),
        "K3SNODE_TAILSCALE_EXTRA_ARGS": "--advertise-tags=tag:a,tag:b  --accept-dns=false",
    }
    s = load(None, env=env)
    assert s.tailscale.extra_args == ("--advertise-tags=tag:a,tag:b", "--accept-dns=false")


@pytest.mark.parametrize(
    "bad", [["--a b"], ["--x=1,extraArgs=--y"], ["plain"], ["--authkey=tskey-1"], [""]]
)
def test_extra_args_k3s_cannot_carry(tmp_path, bad):
    with pytest.raises(SettingsError, match=r"\[tailscale\] extra_args"):
        _settings(tmp_path, extra_args=bad)


def test_vpn_auth_line_carries_extra_args_last():
    line = vpn_auth_line("tskey-1", "https://hs.example", ["--hostname=a", "--x=1,2=3"])
    assert line == (
        "name=tailscale,joinKey=tskey-1,controlServerURL=https://hs.example,"
        "extraArgs=--hostname=a --x=1,2=3\n"
    )
    assert k3s_reads(line) == {
        "name": "tailscale", "joinKey": "tskey-1", "controlServerURL": "https://hs.example",
        "extra": ["--hostname=a", "--x=1,2=3"],
    }  # fmt: skip
    assert vpn_auth_line("tskey-1") == "name=tailscale,joinKey=tskey-1\n"
    with pytest.raises(VPNAuthError, match="whitespace"):
        vpn_auth_line("tskey-1", "", ["--a b"])


def test_k3s_reads_back_every_extra_arg_list_k3snode_writes():
    """Random flags (any printable character but whitespace, ',' and '=' included), seeded."""
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(33, 127)] + ["é", "ß", "→"]
    for _ in range(500):
        args = []
        for _ in range(rng.randint(0, 5)):
            a = "--" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
            if ",extraArgs=" not in a:
                args.append(a)
        line = vpn_auth_line("tskey-auth-k1-ABC", "https://hs.example:8080/x", args)
        got = k3s_reads(line)
        assert got["joinKey"] == "tskey-auth-k1-ABC"
        assert got["controlServerURL"] == "https://hs.example:8080/x"
        assert got["extra"] == args
