"""Installing Tailscale when missing: the install script comes from a real local HTTP server (as
``[tailscale] install_url``), runs with ``sh``, and drops the stub binaries onto PATH."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
import time

import pytest
import yaml
from helpers import run_k3snode
from tailscale_stub import KEY, STUBS, TailscaleStub, write_settings

# A stand-in for https://tailscale.com/install.sh: installs "packages" (the stubs) into $STUB_BIN.
INSTALL_SH = """#!/bin/sh
set -eu
echo "Installing Tailscale for stub-linux, using method stub"
cp "$STUB_SRC/tailscale" "$STUB_SRC/tailscaled" "$STUB_BIN/"
chmod 755 "$STUB_BIN/tailscale" "$STUB_BIN/tailscaled"
echo "Installation complete! Log in to start using Tailscale by running:"
echo
echo "tailscale up"
"""
FAILING_SH = """#!/bin/sh
echo "Installing Tailscale for stub-linux, using method stub"
echo "The installer has encountered an unsupported OS: no package manager found" >&2
exit 1
"""


class Server:
    def __init__(self, routes: dict[str, bytes]):
        self.routes, self.requests = routes, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = outer.routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server({"/install.sh": INSTALL_SH.encode(), "/broken.sh": FAILING_SH.encode(),
                "/binary": b"\x7fELF\x00\x00"})  # fmt: skip
    yield s
    s.close()


@pytest.fixture
def missing(tmp_path):
    stub = TailscaleStub.create(tmp_path, installed=False)
    stub.control(keys={KEY: "ok"})
    yield stub
    stub.stop_daemon()


def apply(stub, cfg):
    env = stub.env(STUB_SRC=STUBS, STUB_BIN=str(stub.bin))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)  # the test server is local
    return run_k3snode("apply", "--config", str(cfg), env=env, timeout=90)


def test_installs_from_the_install_url_then_brings_it_up(server, missing, tmp_path):
    cfg = write_settings(tmp_path, install_url=f"{server.url}/install.sh")
    res = apply(missing, cfg)
    assert res.returncode == 0, res.stderr
    assert server.requests == ["/install.sh"]
    assert os.access(missing.bin / "tailscale", os.X_OK)
    assert f"running the install script from {server.url}/install.sh" in res.stderr
    assert len(missing.calls("tailscaled")) == 1  # started after the install (no systemd here)
    assert "up" in missing.subcommands()
    conf = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert conf["node-external-ip"] == ["100.64.0.5", "fd7a:115c:a1e0::5"]
    # the downloaded script does not linger in the state directory
    assert not [p for p in os.listdir(tmp_path / "var/lib/k3snode") if "install" in p]


def test_already_installed_fetches_nothing(server, tmp_path):
    stub = TailscaleStub.create(tmp_path)
    stub.control(daemon="running", backend_state="Running")
    res = apply(stub, write_settings(tmp_path, install_url=f"{server.url}/install.sh"))
    assert res.returncode == 0, res.stderr
    assert server.requests == []


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/nope.sh", ["cannot fetch the Tailscale install script", "HTTP 404"]),
        ("/broken.sh", ["install script", "failed (exit status 1)", "unsupported OS"]),
        ("/binary", ["not a shell script"]),
    ],
)
def test_install_failures_are_one_line(server, missing, tmp_path, path, words):
    res = apply(missing, write_settings(tmp_path, install_url=f"{server.url}{path}"))
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and all(w in errors[0] for w in words), res.stderr
    assert "Traceback" not in res.stderr
    assert missing.calls() == []  # nothing of Tailscale ran
    assert not (tmp_path / "etc/rancher/k3s/config.yaml").exists()


def test_unreachable_install_url(missing, tmp_path):
    with contextlib.closing(Server({})) as s:
        url = s.url
    res = apply(missing, write_settings(tmp_path, install_url=f"{url}/install.sh"))
    assert res.returncode == 1
    assert "cannot fetch the Tailscale install script" in res.stderr
    assert "Traceback" not in res.stderr


# --- Under systemd: the script runs as a transient unit (systemd-run), outside k3snode's sandbox.
# The decision and the argv are checked here with a stub systemd-run that records its argv and runs
# the command after its options; tests/system/test_tailscale_install_unit.py runs the real one.

STUB_SYSTEMD_RUN = """#!/bin/sh
printf '%s\\n' "$@" > "$SYSTEMD_RUN_ARGV"
while [ $# -gt 0 ]; do case "$1" in --*) shift ;; *) break ;; esac; done
exec "$@"
"""


@pytest.mark.parametrize(
    ("env", "booted", "expected"),
    [
        ({"INVOCATION_ID": "5f2b0e0c9b7a4d7e8f1a2b3c4d5e6f70"}, True, True),
        ({"INVOCATION_ID": "5f2b0e0c9b7a4d7e8f1a2b3c4d5e6f70"}, False, False),  # not PID 1
        ({}, True, False),  # a root shell on a systemd host: no sandbox, run sh directly
        ({"INVOCATION_ID": ""}, True, False),
    ],
)
def test_transient_unit_only_inside_a_systemd_service(tmp_path, env, booted, expected):
    from k3snode.systemd import in_unit as in_systemd_unit

    marker = tmp_path / "run-systemd-system"
    if booted:
        marker.mkdir()
    assert in_systemd_unit(env, str(marker)) is expected


def test_install_argv():
    from k3snode.mesh.tailscale.install import install_argv

    assert install_argv("/var/lib/k3snode/s.sh", 600, False) == ["sh", "/var/lib/k3snode/s.sh"]
    argv = install_argv("/var/lib/k3snode/s.sh", 600, True)
    assert argv[0] == "systemd-run" and argv[-2:] == ["/bin/sh", "/var/lib/k3snode/s.sh"]
    for opt in ("--wait", "--pipe", "--collect", "--quiet", "--unit=k3snode-tailscale-install",
                "--property=RuntimeMaxSec=600s"):  # fmt: skip
        assert opt in argv
    assert all(a.startswith("--") for a in argv[1:-2])


@pytest.fixture
def systemd_run(tmp_path, monkeypatch, missing):
    """The stub systemd-run first on PATH (with the missing Tailscale's bin), as in-process env."""
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "systemd-run").write_text(STUB_SYSTEMD_RUN)
    (sbin / "systemd-run").chmod(0o755)
    argv = tmp_path / "systemd-run.argv"
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", f"{sbin}{os.pathsep}{missing.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SYSTEMD_RUN_ARGV", str(argv))
    monkeypatch.setenv("STUB_SRC", STUBS)
    monkeypatch.setenv("STUB_BIN", str(missing.bin))
    monkeypatch.setenv("TAILSCALE_STUB_DIR", str(missing.dir))
    return argv


def _settings(tmp_path, url):
    from k3snode.config.load import load

    return load(str(write_settings(tmp_path, install_url=url)), env={})


def test_install_through_systemd_run(server, missing, systemd_run, tmp_path):
    from k3snode.mesh.tailscale import install

    s = _settings(tmp_path, f"{server.url}/install.sh")
    install.install(s, timeout=120, transient=True)
    assert os.access(missing.bin / "tailscale", os.X_OK)
    argv = systemd_run.read_text().splitlines()
    script = argv[-1]
    assert argv[:-1] == install.install_argv(script, 120, True)[1:-1]
    # Stored where the transient unit can read it (not k3snode's private /tmp), gone afterwards.
    assert os.path.dirname(script) == s.paths.state_dir
    assert not os.path.exists(script)
    assert missing.calls() == []  # installing runs nothing of Tailscale; the key is not involved


def test_install_through_systemd_run_failure_is_one_line(server, missing, systemd_run, tmp_path):
    from k3snode.mesh.tailscale import install
    from k3snode.mesh.tailscale.types import TailscaleError

    s = _settings(tmp_path, f"{server.url}/broken.sh")
    with pytest.raises(TailscaleError) as e:
        install.install(s, timeout=120, transient=True)
    msg = str(e.value)
    assert e.value.kind == "install-failed" and "\n" not in msg
    assert "as the transient unit k3snode-tailscale-install.service" in msg
    assert "(exit status 1): The installer has encountered an unsupported OS" in msg
    assert systemd_run.exists() and not os.listdir(s.paths.state_dir)


def test_keeps_systemd_informed_while_the_script_runs(
    server, missing, systemd_run, tmp_path, monkeypatch
):
    """A real notify socket receives WATCHDOG=1 and EXTEND_TIMEOUT_USEC while the install runs."""
    import socket

    from k3snode.mesh.tailscale import install

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # ping every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    server.routes["/slow.sh"] = b"sleep 2\n" + INSTALL_SH.encode()
    install.install(_settings(tmp_path, f"{server.url}/slow.sh"), 60, transient=True)
    sock.setblocking(False)
    messages = []
    with contextlib.suppress(BlockingIOError):
        while True:
            messages.append(sock.recv(4096).decode())
    sock.close()
    assert len(messages) >= 2, messages  # at start, and after each 0.5 s the script still ran
    assert all(m == "WATCHDOG=1\nEXTEND_TIMEOUT_USEC=1500000" for m in messages), messages


def test_direct_install_is_killed_at_the_timeout(server, missing, tmp_path, monkeypatch):
    from k3snode.mesh.tailscale import install
    from k3snode.mesh.tailscale.types import TailscaleError

    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    marker = tmp_path / "still-running"
    server.routes["/hang.sh"] = f"sleep 3; touch {marker}\n".encode()
    with pytest.raises(TailscaleError) as e:
        install.install(_settings(tmp_path, f"{server.url}/hang.sh"), 1, transient=False)
    assert "did not finish within 1s" in str(e.value)
    time.sleep(3.5)
    assert not marker.exists()  # sh was killed, not left behind
