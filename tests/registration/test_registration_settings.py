"""The [registration] section: checked values, what a publishing server needs, agents untouched;
and ``k3snode check``'s advice to nodes that join by a bare address (the CLI as a process)."""

from __future__ import annotations

import json

import pytest
from helpers import run_k3snode

from k3snode.config import load as config_load


def load(tmp_path, toml):
    p = tmp_path / "config.toml"
    p.write_text(toml)
    return config_load.load(str(p), env={})


def test_defaults_and_normalised_values(tmp_path):
    s = load(tmp_path, '[registration]\nname = "K3S.Example.COM."\nserver = "2001:db8::53"\n'
             'key_file = "/etc/k3snode/tsig.key"\n')  # fmt: skip
    r = s.registration
    assert (r.name, r.server, r.ttl, r.algorithm, r.publish) == (
        "k3s.example.com", "[2001:db8::53]:53", 60, "hmac-sha256", "external",
    )  # fmt: skip
    assert s.registers
    assert not load(tmp_path, "").registers


@pytest.mark.parametrize(
    "toml, message",
    [
        ('name = "k3s"', "[registration] name: must be a fully qualified DNS name"),
        ('name = "k3s.example.com"\nkey_file = "/k"',
         "[registration] name: publishing k3s.example.com needs [registration] server"),
        ('name = "k3s.example.com"\nserver = "ns1.example.com"',
         "needs [registration] key_file (got name 'k3s.example.com' with no key_file)"),
        ('server = "ns1.example.com:99999"', "[registration] server: port must be 1-65535"),
        ('ttl = 0', "[registration] ttl: must be between 1 and 86400"),
        ('algorithm = "hmac-sha265"', "did you mean 'hmac-sha256'?"),
        ('name = "k3s.example.com"\nserver = "ns1"\nkey_file = "/k"\npublish = "underlay"',
         'publish = "underlay" needs the underlay'),
        ('backend = "http://x"', "must be rfc2136 or a plugin as module:factory"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_exit_2(tmp_path, toml, message):
    p = tmp_path / "config.toml"
    p.write_text(f'[k3s]\nconfig = "{tmp_path}/config.yaml"\n[registration]\n{toml}\n')
    r = run_k3snode("render", "--config", str(p), "--external-ip", "203.0.113.7")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "config.yaml").exists()


def test_an_agent_only_reads_the_name(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("K10x\n")
    s = load(tmp_path, f'[k3s]\nserver = "https://k3s.example.com:6443"\ntoken_file = "{tok}"\n'
             '[registration]\nname = "k3s.example.com"\n')  # fmt: skip
    assert s.role == "agent" and not s.registers


def _check(tmp_path, server):
    tok = tmp_path / "token"
    tok.write_text("K10x\n")
    p = tmp_path / "config.toml"
    p.write_text(f'[node]\nmesh = "none"\n[k3s]\nserver = "{server}"\ntoken_file = "{tok}"\n'
                 f'config = "{tmp_path}/config.yaml"\n[discovery]\nprovider = "none"\n'
                 '[registration]\nname = "k3s.example.com"\n')  # fmt: skip
    r = run_k3snode("check", "--json", "--config", str(p))
    return [f for f in json.loads(r.stdout) if f["topic"] == "registration"]


def test_check_advises_an_agent_that_joins_by_a_bare_address(tmp_path):
    (f,) = _check(tmp_path, "https://203.0.113.5:6443")
    assert f["level"] == "warning"
    assert "bare address 203.0.113.5" in f["message"]
    assert 'set [k3s] server = "https://k3s.example.com:6443"' in f["message"]
    (f,) = _check(tmp_path, "https://[2001:db8::5]:6443")
    assert f["level"] == "warning" and "2001:db8::5" in f["message"]


def test_check_is_content_when_the_agent_joins_by_the_name(tmp_path):
    (f,) = _check(tmp_path, "https://k3s.example.com:6443")
    assert f["level"] == "ok" and "joins by the registration name" in f["message"]


def test_without_dnspython_only_publishing_says_so_in_one_line(tmp_path):
    """dnspython is imported only to publish: a node without it renders, checks and runs the
    rest; publishing fails with one line saying what to install."""
    blocker = tmp_path / "nodns" / "dns"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named dns')\n")
    key = tmp_path / "tsig.key"
    key.write_text("k3snode-key:c2VjcmV0\n")
    key.chmod(0o600)
    p = tmp_path / "config.toml"
    p.write_text(f'[node]\nrole = "server"\nmesh = "none"\n[k3s]\nconfig = "{tmp_path}/c.yaml"\n'
                 f'[paths]\nstate_dir = "{tmp_path}/state"\n[discovery]\nprovider = "none"\n'
                 '[registration]\nname = "k3s.example.com"\nserver = "192.0.2.53"\n'
                 f'key_file = "{key}"\n')  # fmt: skip
    from helpers import REPO, clean_env

    env = clean_env(PYTHONPATH=f"{tmp_path / 'nodns'}:{REPO}")
    r = run_k3snode("render", "--config", str(p), "--external-ip", "203.0.113.7", env=env)
    assert r.returncode == 0 and "- k3s.example.com" in r.stdout, r.stderr
    r = run_k3snode("registration", "publish", "--config", str(p), "--external-ip",
                    "203.0.113.7", env=env)  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "k3snode: k3s.example.com at 192.0.2.53:53: registration needs dnspython: install "
        "python3-dnspython (Debian, Ubuntu), python3-dns (Fedora, EPEL) or pip install "
        "'k3snode[registration]'"
    )
    r = run_k3snode("check", "--json", "--config", str(p), env=env)
    (f,) = [f for f in json.loads(r.stdout) if f["topic"] == "registration"]
    assert f["level"] == "error" and "registration needs dnspython" in f["message"]


def test_check_warns_when_a_hand_written_tls_san_would_be_replaced(tmp_path):
    key = tmp_path / "tsig.key"
    key.write_text("k3snode-key:c2VjcmV0\n")
    key.chmod(0o600)
    (tmp_path / "config.yaml").write_text("tls-san:\n- api.example.com\n")
    p = tmp_path / "config.toml"
    p.write_text(f'[node]\nrole = "server"\nmesh = "none"\n[k3s]\nconfig = "{tmp_path}/config.yaml"\n'
                 f'[paths]\nstate_dir = "{tmp_path}/state"\n[discovery]\nprovider = "none"\n'
                 '[registration]\nname = "k3s.example.com"\nserver = "192.0.2.53"\n'
                 f'key_file = "{key}"\n')  # fmt: skip
    r = run_k3snode("check", "--json", "--config", str(p))
    found = [f for f in json.loads(r.stdout) if f["topic"] == "registration"]
    assert [f["level"] for f in found] == ["ok", "warning"], found
    assert "your tls-san ['api.example.com'] is replaced" in found[1]["message"]
    assert "move its values to [k3s.options] tls-san" in found[1]["message"]
