"""Installing Tailscale when missing: the install script comes from a real local HTTP server (as
``[tailscale] install_url``), runs with ``sh``, and drops the stub binaries onto PATH."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading

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
