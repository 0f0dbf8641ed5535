"""Run K3s's YAML library (Debian's golang-gopkg-yaml.v2, 2.4.0 as K3s pins) on files k3snode
wrote, through the small Go program ``goyaml_oracle.go``. Built once per session; tests skip when
Go or the library is missing (``tests/apt-packages.txt`` installs both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
GOPATH = "/usr/share/gocode"
LIBRARY = os.path.join(GOPATH, "src/gopkg.in/yaml.v2")


def build(workdir: str) -> str:
    if shutil.which("go") is None or not os.path.isdir(LIBRARY):
        pytest.skip("needs Go and golang-gopkg-yaml.v2-dev (tests/apt-packages.txt)")
    binary = os.path.join(workdir, "goyaml-oracle")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOCACHE": os.path.join(workdir, "gocache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    r = subprocess.run(
        ["go", "build", "-o", binary, os.path.join(HERE, "goyaml_oracle.go")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return binary


def decode(binary: str, *paths: str) -> list[tuple[str, str, str]]:
    """``(key, Go type, fmt.Sprint(value))`` per item of each file, in order."""
    r = subprocess.run([binary, *paths], capture_output=True, text=True, timeout=60, check=True)
    return [tuple(json.loads(line)) for line in r.stdout.splitlines()]
