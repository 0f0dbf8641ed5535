"""Progress at the default level for what takes more than a second: a metadata service that does
not answer, the Tailscale installer's own output as it comes, a slow K3s restart. Quick answers
stay silent. The commands run as real processes; the metadata service is a real HTTP server, the
install script comes over HTTP and runs under ``sh``, systemctl and Tailscale are the stubs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading

import pytest
from fakes.imds import FakeIMDS
from helpers import REPO, clean_env, k3snode_cmd, run_k3snode
from tailscale_stub import KEY, STUBS, TailscaleStub, write_settings


def _settings(tmp_path) -> str:
    path = tmp_path / "config.toml"
    path.write_text('[node]\nrole = "server"\n[discovery]\ntimeout = 3\n')
    return str(path)


def test_a_metadata_service_that_does_not_answer_is_announced_while_waiting(tmp_path):
    with FakeIMDS("aws", mode="token-hang") as imds:
        proc = subprocess.Popen(
            k3snode_cmd("detect", "--config", _settings(tmp_path), "--provider", "aws",
                        "--metadata-endpoint", imds.url),
            env=clean_env(), cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        first = proc.stderr.readline()
        still_running = proc.poll() is None
        rest = proc.stderr.read()
        proc.wait(30)
    host = imds.url.split("://", 1)[1]
    assert first == f"k3snode: asking aws metadata at {host} (up to 3 s)…\n"
    assert still_running, "the line came while waiting, not at the end"
    assert re.search(rf"asking aws metadata at {re.escape(host)} \(up to 3 s\): no answer after "
                     r"\d\.\d s\n", rest), rest  # fmt: skip


def test_a_quick_answer_says_nothing_at_the_default_level_and_what_was_asked_with_v(tmp_path):
    with FakeIMDS("aws", ipv4="3.120.45.10") as imds:
        args = ["detect", "--config", _settings(tmp_path), "--provider", "aws",
                "--metadata-endpoint", imds.url]  # fmt: skip
        quiet = run_k3snode(*args)
        verbose = run_k3snode(*args, "-v")
    assert quiet.returncode == 0 and "3.120.45.10 (metadata, aws)" in quiet.stdout
    assert "asking" not in quiet.stderr
    assert "asking aws metadata at 127.0.0.1:" in verbose.stderr
    assert "aws metadata answered: public IPv4 3.120.45.10" in verbose.stderr


# An install script that prints a line, waits until the test has seen that line in k3snode's
# output (so the output must be streamed, not collected), then finishes like the real one.
SLOW_INSTALL_SH = """#!/bin/sh
set -eu
echo "Installing Tailscale for stub-linux, using method stub"
while [ ! -e "$STUB_GO" ]; do sleep 0.1; done
echo "+ apt-get install -y tailscale tailscale-archive-keyring" >&2
cp "$STUB_SRC/tailscale" "$STUB_SRC/tailscaled" "$STUB_BIN/"
chmod 755 "$STUB_BIN/tailscale" "$STUB_BIN/tailscaled"
echo "Installation complete! Log in to start using Tailscale by running:"
"""


@pytest.fixture
def install_server():
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = SLOW_INSTALL_SH.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/install.sh"
    httpd.shutdown()
    httpd.server_close()


def test_the_tailscale_installer_output_is_streamed_with_elapsed_time(tmp_path, install_server):
    stub = TailscaleStub.create(tmp_path, installed=False)
    stub.control(keys={KEY: "ok"})
    go = tmp_path / "go"
    env = stub.env(STUB_SRC=STUBS, STUB_BIN=str(stub.bin), STUB_GO=str(go))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    cfg = write_settings(tmp_path, install_url=install_server)
    proc = subprocess.Popen(k3snode_cmd("apply", "--config", str(cfg)), env=env, cwd=REPO,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "tailscale install [" in line:
                break
        go.touch()  # only now may the script go on
        seen += proc.stderr.readlines()
        proc.wait(60)
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
        stub.stop_daemon()
    text = "".join(seen)
    assert proc.returncode == 0, text
    lines = [ln for ln in seen if "tailscale install [" in ln]
    assert re.fullmatch(
        r"k3snode: tailscale install \[ *\d+ s\] Installing Tailscale for stub-linux, using "
        r"method stub\n",
        lines[0],
    ), lines
    # the script's stderr line and its next stdout line: two pipes, so in either order
    assert any("] + apt-get install -y tailscale tailscale-archive-keyring" in ln for ln in lines)
    assert any("] Installation complete!" in ln for ln in lines[1:])
    assert len(lines) == 3  # blank lines are not echoed
    assert text.index("running the install script") < text.index("tailscale install [")


def test_a_slow_k3s_restart_is_announced_and_its_outcome_and_duration_said(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(REPO, "tests", "fakes", "systemctl.py"), bindir / "systemctl")
    state = tmp_path / "systemctl.json"
    unit = {"load": "loaded", "active": "active", "sub": "running", "invocation": 1,
            "after_restart": "slow", "slow_for": 2.5}  # fmt: skip
    state.write_text(json.dumps({"units": {"k3s.service": unit}}))
    env = clean_env(
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        STUB_SYSTEMCTL_STATE=str(state),
        STUB_SYSTEMCTL_LOG=str(tmp_path / "systemctl.jsonl"),
    )
    for d in ("etc/rancher/k3s", "state"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[node]\nrole = "server"\nmesh = "none"\n')
    r = run_k3snode("apply", "--config", str(cfg), "--external-ip", "203.0.113.5",
                    "--k3s-config", str(tmp_path / "etc/rancher/k3s/config.yaml"),
                    "--state-dir", str(tmp_path / "state"), env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "k3snode: restarting k3s.service (up to 120 s)…\n" in r.stderr
    assert re.search(r"^restarted k3s\.service \(\d\.\d s\)$", r.stdout, re.M), r.stdout


def test_tailscale_up_waiting_for_approval_says_what_to_do_once(tmp_path):
    stub = TailscaleStub.create(tmp_path)
    stub.control(keys={KEY: "machine_auth"})
    cfg = write_settings(tmp_path)  # [tailscale] timeout = 5
    try:
        r = run_k3snode("apply", "--config", str(cfg), env=stub.env(), timeout=60)
    finally:
        stub.stop_daemon()
    assert r.returncode == 1, r.stderr
    advice = [ln for ln in r.stderr.splitlines() if "waiting for this machine to be approved" in ln]
    assert advice == [
        "k3snode: tailscale: waiting for this machine to be approved in the admin console "
        "(https://login.tailscale.com/admin/machines); or use an auth key that is pre-approved"
    ], r.stderr
    assert "k3snode: tailscale up: waiting for Running (up to 5 s)…" in r.stderr
    assert r.stderr.index("waiting for Running") < r.stderr.index("to be approved")


class _Terminal:
    """A stream that says it is a terminal (as stderr is when an operator runs a command)."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


def test_on_a_terminal_the_waiting_line_updates_in_place_and_the_journal_gets_one_line():
    import io
    import logging

    from k3snode import logs
    from k3snode.progress import Step

    journal = io.StringIO()
    logs.setup(0, stream=journal)
    log = logging.getLogger("k3snode.test")
    term = _Terminal()
    try:
        with Step(
            log, "asking aws metadata at 169.254.169.254 (up to 10 s)", after=0, stream=term
        ) as s:
            # wait until the line has been redrawn twice: the waiting line updates in place
            for _ in range(200):
                if term.text.count("\r\033[Kk3snode: asking aws") >= 2:
                    break
                threading.Event().wait(0.05)
            s.result("answered")
        with Step(log, "restarting k3s.service (up to 120 s)", after=0, stream=io.StringIO()) as s:
            threading.Event().wait(0.2)
            s.result("restarted")
    finally:
        logs.setup(0)
    assert (
        term.text.count("\r\033[Kk3snode: asking aws metadata at 169.254.169.254 (up to 10 s)… ")
        >= 2
    )
    assert term.text.endswith("\r\033[K")  # the waiting line is cleared before the outcome
    lines = journal.getvalue().splitlines()
    assert lines[0].startswith(
        "k3snode: asking aws metadata at 169.254.169.254 (up to 10 s): answered after "
    )
    assert lines[1:] == ["k3snode: restarting k3s.service (up to 120 s)…", lines[2]]
    assert lines[2].startswith("k3snode: restarting k3s.service (up to 120 s): restarted after ")
