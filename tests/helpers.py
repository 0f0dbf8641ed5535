"""Helpers shared by the test tiers: run the real CLI, build network namespaces, free ports.

Everything here drives real things — processes, sockets, namespaces — never k3snode's internals.
Names of namespaces and interfaces are unique per test run (``k3sn<pid><n>``) so that several test
runs (and several developers) on one machine never collide.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_counter = itertools.count()


def unique_name(prefix: str = "k3sn") -> str:
    """A name of at most 15 characters (interface-name limit), unique on this machine."""
    return f"{prefix}{os.getpid() % 100000}{next(_counter)}"[:15]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a k3snode child: PATH and Python's own, nothing from the developer's
    K3S_*/K3SNODE_* variables, the checkout first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K3S_", "K3SNODE_"))}
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("NOTIFY_SOCKET", None)
    env.pop("INVOCATION_ID", None)  # a CI runner's unit: k3snode would use systemd-run
    # A fresh settings directory per call, so that what `apply`/`configure` save beside the
    # settings file (k3snode.env) never lands in the host's /etc/k3snode or leaks between tests.
    # A test that wants its own file passes --config or K3SNODE_CONFIG (both win over this).
    if "K3SNODE_CONFIG" not in extra:
        cfg_dir = tempfile.mkdtemp(prefix="cfg-", dir=_settings_base())
        open(os.path.join(cfg_dir, "config.toml"), "w").close()
        env["K3SNODE_CONFIG"] = os.path.join(cfg_dir, "config.toml")
    env.update(extra)
    return env


@functools.cache
def _settings_base() -> str:
    base = tempfile.mkdtemp(prefix="k3snode-test-settings-")
    atexit.register(shutil.rmtree, base, True)
    return base


def k3snode_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "k3snode", *args]


def run_k3snode(
    *args: str,
    env: dict[str, str] | None = None,
    netns: str | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m k3snode ARGS`` as a real process (optionally inside a network namespace)."""
    cmd = k3snode_cmd(*args)
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.run(
        cmd,
        env=env if env is not None else clean_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        input=input,
        cwd=REPO,
    )


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def is_root() -> bool:
    return os.geteuid() == 0


def have(*commands: str) -> bool:
    return all(shutil.which(c) for c in commands)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return it, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def sh(*cmd: str, check: bool = True, netns: str | None = None) -> subprocess.CompletedProcess:
    if netns:
        cmd = ("ip", "netns", "exec", netns, *cmd)
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


@dataclass
class NetNS:
    """A network namespace that is deleted again, with helpers to wire it up."""

    name: str
    _links: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def create(cls, prefix: str = "k3sn") -> Iterator[NetNS]:
        ns = cls(unique_name(prefix))
        sh("ip", "netns", "add", ns.name)
        try:
            ns.ip("link", "set", "lo", "up")
            yield ns
        finally:
            sh("ip", "netns", "del", ns.name, check=False)
            shutil.rmtree(f"/etc/netns/{ns.name}", ignore_errors=True)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "-n", self.name, *args, check=check)

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*cmd, check=check, netns=self.name)

    def popen(self, cmd: Sequence[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)

    def hosts(self, text: str) -> None:
        """Give processes started with ``ip netns exec`` in this namespace their own /etc/hosts."""
        d = f"/etc/netns/{self.name}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/hosts", "w") as f:
            f.write(text)


def veth(
    a: NetNS, b: NetNS | None, a_addrs: Sequence[str] = (), b_addrs: Sequence[str] = ()
) -> tuple[str, str]:
    """A veth pair between two namespaces (``b`` None: the peer stays in the caller's namespace),
    with addresses, both ends up. Returns the two interface names."""
    ea, eb = unique_name("va"), unique_name("vb")
    sh("ip", "link", "add", ea, "type", "veth", "peer", "name", eb)
    sh("ip", "link", "set", ea, "netns", a.name)
    if b is not None:
        sh("ip", "link", "set", eb, "netns", b.name)
    for addr in a_addrs:
        a.ip("addr", "add", addr, "dev", ea, *(("nodad",) if ":" in addr else ()))
    for addr in b_addrs:
        cmd = ("addr", "add", addr, "dev", eb, *(("nodad",) if ":" in addr else ()))
        b.ip(*cmd) if b is not None else sh("ip", *cmd)
    a.ip("link", "set", ea, "up")
    b.ip("link", "set", eb, "up") if b is not None else sh("ip", "link", "set", eb, "up")
    return ea, eb
