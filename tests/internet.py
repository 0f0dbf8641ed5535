"""The network a fresh node meets, offline: k3snode's release set on "github.com", a stub K3s
installer on "get.k3s.io", and a mirror ("mirror.test") standing in for the Debian archive and PyPI —
served by ``tests/fakes/internet.py`` in a network namespace of its own, joined to the node's by a
veth.

The node's tree is changed only where a real node's network differs from this one: ``/etc/hosts``
names the server, the test CA is trusted (``update-ca-certificates``), apt's sources are the local
flat repository (``debian_tree.apt_repository``: exactly the .debs Debian would give) and pip's index
is the local wheel directory (the dependencies' wheels from PyPI). The installer, its URLs and the
user-data stay as users run them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

from debian_tree import CACHE, CLOUD_PACKAGES, apt_repository, run_in
from helpers import REPO, NetNS, veth, wait_for

SERVER_IP = "16.16.16.1"
NODE_IP = "16.16.16.16"  # public-looking (not a documentation range), as a cloud VM's
HOSTS = ("github.com", "get.k3s.io", "tailscale.com", "mirror.test")
RELEASES = "github.com/k3snode/k3snode/releases"
ONE_LINER_URL = f"https://{RELEASES}/latest/download/install.sh"
STUBS = os.path.join(REPO, "tests", "stubs")
# A stand-in for https://tailscale.com/install.sh and the package it installs: the stub CLI and
# daemon into /usr, a unit, enable --now (as the package's postinst does).
TAILSCALE_INSTALL = """#!/bin/sh
set -eu
echo "Installing Tailscale (stub)"
curl -fsSLo /usr/bin/tailscale https://tailscale.com/stub/tailscale
curl -fsSLo /usr/sbin/tailscaled https://tailscale.com/stub/tailscaled
chmod 755 /usr/bin/tailscale /usr/sbin/tailscaled
curl -fsSLo /lib/systemd/system/tailscaled.service https://tailscale.com/stub/tailscaled.service
systemctl daemon-reload
systemctl enable --now tailscaled.service
"""
TAILSCALED_UNIT = """[Unit]
Description=Tailscale node agent (stub)
[Service]
Environment=TAILSCALE_STUB_DIR=/var/lib/tsstub
ExecStart=/usr/sbin/tailscaled --state=/var/lib/tailscale/tailscaled.state
[Install]
WantedBy=multi-user.target
"""
# Python of each suite's python3, for the dependency wheels the virtualenv path installs.
PYTHONS = {"bookworm": "3.11", "trixie": "3.13"}


def version() -> str:
    with open(os.path.join(REPO, "pyproject.toml")) as f:
        return next(line.split('"')[1] for line in f if line.startswith("version = "))


@functools.cache
def release_set() -> str:
    """The release set of this checkout, built once per test run by ``scripts/release.sh``."""
    out = tempfile.mkdtemp(prefix="k3snode-release-")
    os.chmod(out, 0o755)  # as a downloaded directory would be
    res = subprocess.run(
        [os.path.join(REPO, "scripts", "release.sh"), out],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert res.returncode == 0, f"release.sh failed:\n{res.stdout}\n{res.stderr}"
    return out


def wheels() -> str:
    """k3snode's dependencies as wheels for each suite's Python (pip download from PyPI; cached)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    deps = project["project"]["dependencies"] + project["build-system"]["requires"]
    reqs = [d for d in deps if "python_version" not in d]
    key = hashlib.sha256(f"{reqs} {sorted(PYTHONS.values())}".encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "wheels", key)
    if os.path.isdir(path):
        return path
    tmp = f"{path}.{os.getpid()}.tmp"
    for py in sorted(set(PYTHONS.values())):
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "-q", "--dest", tmp),
                *("--only-binary=:all:", "--python-version", py, "--implementation", "cp"),
                *("--platform", "manylinux_2_17_x86_64", *reqs),
            ],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
        )
    os.rename(tmp, path)
    return path


def make_certs(d: str) -> tuple[str, str, str]:
    """A test CA and a certificate for every served host name: (ca, cert, key)."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=k3snode test CA",
    )
    ssl("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=github.com")
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{h}" for h in HOSTS) + "\n")
    ssl(
        "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "2",
        "-out", "srv.crt", "-extfile", "san.cnf",
    )  # fmt: skip
    return tuple(os.path.join(d, n) for n in ("ca.crt", "srv.crt", "srv.key"))  # type: ignore[return-value]


class Internet:
    """The served files (built once per test module) and, per test, the server in a namespace."""

    def __init__(self, workdir: str, release: str, suites: tuple[str, ...]) -> None:
        self.dir = workdir
        self.www = os.path.join(workdir, "www")
        self.release = release
        self.ca, self.cert, self.key = make_certs(workdir)
        v = version()
        tagdir = os.path.join(self.www, RELEASES, "download", f"v{v}")
        shutil.copytree(release, tagdir)
        os.makedirs(os.path.join(self.www, RELEASES, "latest"))
        os.symlink(f"../download/v{v}", os.path.join(self.www, RELEASES, "latest", "download"))
        k3s = os.path.join(self.www, "github.com/k3s-io/k3s/releases/download/v1.31.4+k3s1")
        os.makedirs(k3s)
        shutil.copy(os.path.join(STUBS, "k3s"), k3s)
        os.makedirs(os.path.join(self.www, "get.k3s.io"))
        shutil.copy(
            os.path.join(STUBS, "k3s-install.sh"), os.path.join(self.www, "get.k3s.io/index.html")
        )
        ts = os.path.join(self.www, "tailscale.com")
        os.makedirs(os.path.join(ts, "stub"))
        with open(os.path.join(ts, "install.sh"), "w") as f:
            f.write(TAILSCALE_INSTALL)
        with open(os.path.join(ts, "stub", "tailscaled.service"), "w") as f:
            f.write(TAILSCALED_UNIT)
        for name in ("tailscale", "tailscaled"):
            shutil.copy(os.path.join(STUBS, name), os.path.join(ts, "stub"))
        apt = os.path.join(self.www, "mirror.test", "apt")
        os.makedirs(apt)
        deb = next(os.path.join(release, f) for f in os.listdir(release) if f.endswith(".deb"))
        for suite in suites:
            repo = apt_repository("cloud", CLOUD_PACKAGES, [deb, "python3-venv"], suite)
            os.symlink(repo, os.path.join(apt, suite))
        os.symlink(wheels(), os.path.join(self.www, "mirror.test", "wheels"))
        self.log = os.path.join(workdir, "requests.log")

    def prepare(self, root: str, suite: str) -> None:
        """Point the tree's name lookup, CA trust, apt and pip at this network."""
        with open(os.path.join(root, "etc/hosts"), "a") as f:
            f.write(f"{SERVER_IP} {' '.join(HOSTS)}\n")
        shutil.copy(self.ca, os.path.join(root, "usr/local/share/ca-certificates/k3snode-test.crt"))
        run_in(root, "update-ca-certificates")
        for p in ("etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(root, p))
        with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
            f.write(f"deb [trusted=yes] http://mirror.test/apt/{suite}/ ./\n")
        with open(os.path.join(root, "etc/pip.conf"), "w") as f:
            f.write(
                "[global]\nno-index = true\nfind-links = http://mirror.test/wheels/\n"
                "trusted-host = mirror.test\n"
            )

    @contextlib.contextmanager
    def serve(self) -> Iterator[NetNS]:
        """The server up in a namespace of its own; yields the node's namespace (default route to
        the server, the node's public-looking address on its interface)."""
        with NetNS.create("k3si") as server, NetNS.create("k3sn") as node:
            dev, _ = veth(node, server, [f"{NODE_IP}/24"], [f"{SERVER_IP}/24"])
            node.ip("route", "add", "default", "via", SERVER_IP, "dev", dev)
            proc = server.popen(
                [
                    *("/usr/bin/python3", os.path.join(REPO, "tests/fakes/internet.py")),
                    *(self.www, SERVER_IP, self.cert, self.key, self.log),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                wait_for(lambda: proc.stdout.readline().strip() == "ready", 10, what="the server")
                yield node
            finally:
                proc.terminate()
                proc.wait(timeout=10)

    def requests(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError), open(self.log) as f:
            return f.read().splitlines()
        return []
