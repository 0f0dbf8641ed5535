"""Help that teaches: every help page describes every flag, shows only the flags its command uses,
ends with the environment it honours and examples — and the examples run (in a sandbox: every
absolute path under a temporary root, a fake metadata service, stub Tailscale and systemctl)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
from fakes.imds import FakeIMDS
from helpers import REPO, clean_env, free_port, k3snode_cmd, run_k3snode, wait_for
from tailscale_stub import KEY, TailscaleStub

from k3snode import cli

COMMANDS = cli.available()


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_of_every_command_is_described(name):
    for action in _subparser(name)._actions:
        if action.option_strings:
            assert action.help and len(action.help) > 10, (name, action.option_strings)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_page_ends_with_environment_and_examples(name):
    r = run_k3snode(name, "--help")
    assert r.returncode == 0 and r.stderr == ""
    text = r.stdout
    env_at, ex_at = text.index("\nenvironment:\n"), text.index("\nexamples:\n")
    assert env_at < ex_at, "environment, then examples, at the end"
    assert "K3SNODE_CONFIG" in text[env_at:ex_at]
    examples = [
        ln for ln in text[ex_at:].splitlines() if ln.startswith("    ") and "k3snode " in ln
    ]
    assert len(examples) >= 2, text[ex_at:]
    for action in _subparser(name)._actions:
        for opt in action.option_strings:
            assert opt in text


@pytest.mark.parametrize(
    ("name", "absent", "present"),
    [
        ("status", ["--role", "--mesh", "--external-ip", "--provider"], ["--json", "--run-dir"]),
        ("tailscale-policy", ["--role", "--external-ip", "--state-dir"], ["--json", "--config"]),
        ("detect", ["--role", "--k3s-config", "--health-port"], ["--provider", "--external-ip"]),
        ("prepare-image", ["--mesh", "--provider"], ["--root", "--dry-run"]),
        ("apply", ["--health-port", "--run-dir"], ["--role", "--mesh", "--dry-run", "--server"]),
    ],
)
def test_each_command_shows_only_the_flags_it_uses(name, absent, present):
    text = run_k3snode(name, "--help").stdout
    for flag in absent:
        assert f" {flag} " not in text and f"[{flag}" not in text, flag
    for flag in present:
        assert flag in text


def test_top_level_help_names_the_installer_variables_and_gives_examples():
    r = run_k3snode("--help")
    assert r.returncode == 0
    env = r.stdout.split("\nenvironment:\n", 1)[1]
    for var in (
        "K3S_URL",
        "K3S_TOKEN",
        "K3S_TOKEN_FILE",
        "K3SNODE_CONFIG",
        "K3SNODE_<SECTION>_<KEY>",
    ):
        assert var in env
    examples = env.split("\nexamples:\n", 1)[1]
    assert "--cluster-init" in examples and "K3S_URL=" in examples
    assert "--mesh tailscale" in examples


def test_help_for_one_command_imports_only_that_command():
    code = (
        "import sys, contextlib, io\n"
        "from k3snode import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['detect', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('k3snode.commands.')))\n"
        "import k3snode.cli\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True
    ).stdout
    assert out.strip() == "['k3snode.commands.detect']"
    code = "import sys\nfrom k3snode import cli\ntry:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\nprint([m for m in sys.modules if m.startswith('k3snode.commands.') or m in ('yaml', 'pyroute2')])"  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True
    ).stdout
    assert out.strip().endswith("[]")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["apply", "--role", "worker"], "k3snode: error: --role: must be server or agent (got 'worker')"),
        (["render", "--mesh", "wireguard"],
         "k3snode: error: --mesh: must be wireguard-native, tailscale or none; "
         "did you mean 'wireguard-native'? (got 'wireguard')"),
        (["aply"], "k3snode: error: unknown command 'aply' (did you mean apply?); see k3snode --help"),
        (["status", "--role", "server"],
         "k3snode: error: --role: not used by k3snode status; see k3snode status --help"),
        (["detect", "--provder", "aws"],
         "k3snode: error: unknown option --provder (did you mean --provider?); "
         "see k3snode detect --help"),
        (["run", "--health-port", "http"], "k3snode: error: --health-port: must be a port number (got 'http')"),
        (["detect", "--provider"], "k3snode: error: --provider: needs a value"),
        (["wireguard", "pubky"], "k3snode: error: action: invalid choice: 'pubky' (choose from pubkey, show, up)"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_exit_2(argv, line):
    r = run_k3snode(*argv)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.replace("'pubkey', 'show', 'up'", "pubkey, show, up") == line + "\n"


def test_a_missing_action_is_one_line():
    r = run_k3snode("wireguard")
    assert r.returncode == 2
    assert r.stderr == (
        "k3snode: error: k3snode wireguard: needs action (pubkey, show, up); "
        "see k3snode wireguard --help\n"
    )


def test_no_command_is_one_line():
    r = run_k3snode()
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("k3snode: error: a command is needed (detect, ")


# --- the examples run --------------------------------------------------------------------------


def _examples() -> list[tuple[str, str]]:
    out = [("k3snode", cmd) for _, cmd in cli.EXAMPLES]
    for name in cli.COMMANDS:
        try:
            mod = cli.command_module(name)
        except ImportError:
            out += [(name, "k3snode " + name)]  # reported as skipped below
            continue
        out += [(name, cmd) for _, cmd in getattr(mod, "EXAMPLES", ())]
    return out


def _rebase(text: str, root: str) -> str:
    for top in ("/etc/", "/var/", "/run/", "/mnt"):
        if text.startswith(top):
            return root + text
    return text


class Sandbox:
    def __init__(self, root, imds: FakeIMDS, stub: TailscaleStub):
        self.root = str(root)
        for d in ("etc/k3snode", "etc/rancher/k3s/config.yaml.d", "var/lib/k3snode",
                  "run/k3snode", "mnt"):  # fmt: skip
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        tsig = "hmac-sha256:k3snode-test:" + "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="
        for name, text in (("token", "K10example::server:secret"), ("tailscale.key", KEY),
                           ("tsig.key", tsig)):  # fmt: skip
            path = os.path.join(self.root, "etc/k3snode", name)
            with open(path, "w") as f:
                f.write(text + "\n")
            os.chmod(path, 0o600)
        open(os.path.join(self.root, "etc/k3snode/config.toml"), "w").close()
        # systemctl: the stub from tests/fakes (no K3s unit installed)
        state = os.path.join(self.root, "systemctl.json")
        with open(state, "w") as f:
            json.dump({"units": {}}, f)
        wrapper = stub.bin / "systemctl"
        wrapper.write_text(
            f'#!/bin/sh\nexec {sys.executable} {REPO}/tests/fakes/systemctl.py "$@"\n'
        )
        wrapper.chmod(0o755)
        self.env = stub.env(
            K3SNODE_CONFIG=f"{self.root}/etc/k3snode/config.toml",
            K3SNODE_K3S_CONFIG=f"{self.root}/etc/rancher/k3s/config.yaml",
            K3SNODE_PATHS_STATE_DIR=f"{self.root}/var/lib/k3snode",
            K3SNODE_PATHS_RUN_DIR=f"{self.root}/run/k3snode",
            K3SNODE_DISCOVERY_DMI_DIR=f"{REPO}/tests/fakes/dmi/aws",
            K3SNODE_DISCOVERY_METADATA_ENDPOINT=imds.url,
            K3SNODE_HEALTH_PORT="0",
            K3SNODE_TAILSCALE_TIMEOUT="10",
            K3SNODE_DAEMON_BOOT_WAIT="5",
            STUB_SYSTEMCTL_STATE=state,
            STUB_SYSTEMCTL_LOG=os.path.join(self.root, "systemctl.jsonl"),
            STUB_K3S_CONFIG=f"{self.root}/etc/rancher/k3s/config.yaml",
        )
        for var in (
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "no_proxy",
            "NO_PROXY",
        ):
            self.env.pop(var, None)

    def command(self, example: str) -> tuple[dict[str, str], list[str]]:
        words = shlex.split(example)
        env = dict(self.env)
        while "=" in words[0]:
            var, _, value = words.pop(0).partition("=")
            env[var] = _rebase(value, self.root)
        assert words[0] == "k3snode", example
        if words[1] == "wireguard":  # the underlay's commands are for nodes that have one
            env.update(K3SNODE_UNDERLAY_ENABLED="true", K3SNODE_UNDERLAY_ADDRESS="10.99.0.1/24",
                       K3SNODE_UNDERLAY_PRIVATE_KEY_FILE=f"{self.root}/var/lib/k3snode/ul.key")  # fmt: skip
        if words[1] == "registration":  # a name, and a DNS server that is not there
            env.update(K3SNODE_REGISTRATION_NAME="k3s.example.com",
                       K3SNODE_REGISTRATION_SERVER=f"127.0.0.1:{free_port()}",
                       K3SNODE_REGISTRATION_TIMEOUT="1",
                       K3SNODE_REGISTRATION_KEY_FILE=f"{self.root}/etc/k3snode/tsig.key")  # fmt: skip
        return env, [_rebase(w, self.root) for w in words[1:]]


@pytest.fixture
def sandbox(tmp_path):
    with FakeIMDS("aws", ipv4="3.120.45.10", ipv6="2a05:d014:abc:d00::10") as imds:
        stub = TailscaleStub.create(tmp_path)
        stub.control(keys={KEY: "ok"})
        try:
            yield Sandbox(tmp_path / "root", imds, stub)
        finally:
            stub.stop_daemon()


@pytest.mark.parametrize(("where", "example"), _examples())
def test_every_example_runs(sandbox, where, example):
    if where in cli.COMMANDS and where not in cli.available():
        pytest.skip(f"k3snode {where} is not in this tree yet")
    if "k3snode configure" in example and "configure" not in cli.available():
        pytest.skip("k3snode configure is not in this tree yet")
    env, argv = sandbox.command(example)
    if argv[0] == "run":
        proc = subprocess.Popen(k3snode_cmd(*argv), env=env, cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        status = os.path.join(sandbox.root, "run/k3snode/status.json")
        try:
            wait_for(lambda: os.path.exists(status) or proc.poll() is not None, 30, what="status")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "ready: " in err
        return
    r = subprocess.run(k3snode_cmd(*argv), env=env, cwd=REPO, text=True, capture_output=True,
                       timeout=90)  # fmt: skip
    assert r.returncode in (0, 1), (example, r.stderr)
    assert "Traceback" not in r.stderr and "error:" not in r.stderr.split("\n")[0][:16], r.stderr
