"""Run K3s's YAML library (Debian's golang-gopkg-yaml.v2, 2.4.0 as K3s pins) on files k3snode
wrote, through the small Go program ``goyaml_oracle.go``. Built once per source (the binary and
Go's build cache are kept in ``$TMPDIR/k3snode-goyaml-<uid>``, under a lock, so parallel test
workers build it once between them); tests skip when Go or the library is missing
(``tests/apt-packages.txt`` installs both)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"
LIBRARY = os.path.join(GOPATH, "src/gopkg.in/yaml.v2")


def build() -> str:
    """The oracle's binary, built when its source changed; the path."""
    if shutil.which("go") is None or not os.path.isdir(LIBRARY):
        pytest.skip("needs Go and golang-gopkg-yaml.v2-dev (tests/apt-packages.txt)")
    source = os.path.join(HERE, "goyaml_oracle.go")
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    base = os.path.join(tempfile.gettempdir(), f"k3snode-goyaml-{os.getuid()}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    binary = os.path.join(base, f"goyaml-oracle-{digest}")
    with open(os.path.join(base, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds; the others wait and reuse it
        if os.access(binary, os.X_OK):
            return binary
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": GOPATH,
            "GOCACHE": os.path.join(base, "gocache"),
            "GOFLAGS": "",
            "CGO_ENABLED": "0",
        }
        r = subprocess.run(
            ["go", "build", "-o", binary + ".tmp", source],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        os.replace(binary + ".tmp", binary)
    return binary


def decode(binary: str, *paths: str) -> list[tuple[str, str, str]]:
    """``(key, Go type, fmt.Sprint(value))`` per item of each file, in order."""
    r = subprocess.run([binary, *paths], capture_output=True, text=True, timeout=60, check=True)
    return [tuple(json.loads(line)) for line in r.stdout.splitlines()]
