"""A node for daemon tests: a network namespace with a veth to a "router" namespace, a stub
``systemctl`` (and ``tailscale``) on PATH, a real ``NOTIFY_SOCKET``, and ``k3snode run`` as a real
process inside the namespace. Addresses change with ``ip`` (rtnetlink), exactly as on a host.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from helpers import REPO, NetNS, clean_env, free_port, veth, wait_for

STUB_SYSTEMCTL = os.path.join(REPO, "tests", "fakes", "systemctl.py")

DEFAULT_DAEMON = {
    "debounce": 0.2,
    "confirm_delay": 0.4,
    "min_restart_interval": 1.0,
    "boot_wait": 10.0,
    "poll_interval": 300.0,
    "restart_timeout": 5.0,
}


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[str] = []

    def drain(self, timeout: float = 0.0) -> list[str]:
        self.sock.settimeout(timeout if timeout > 0 else 0.0001)
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, socket.timeout):
                break
            self.messages.append(data.decode())
            self.sock.settimeout(0.0001)
        return self.messages

    def wait(self, needle: str, timeout: float = 10.0) -> str:
        def seen():
            self.drain(0.05)
            return next((m for m in self.messages if needle in m), None)

        return wait_for(seen, timeout, what=f"sd_notify {needle!r}")

    def close(self) -> None:
        self.sock.close()


@dataclass
class Node:
    ns: NetNS
    router: NetNS
    dev: str
    root: str
    daemon: dict = field(default_factory=dict)
    unit: dict | None = field(
        default_factory=lambda: {
            "load": "loaded",
            "active": "active",
            "sub": "running",
            "invocation": 1,
        }
    )
    health_port: int = 0
    grace: float = 30.0
    mesh: str = "none"
    role: str = "server"  # "": the settings name no role (a node not configured)
    health_listen: str = ""
    peer: str = ""  # the veth's other end, in the router namespace
    discovery: dict = field(default_factory=dict)
    extra_toml: str = ""
    env_extra: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    notify: NotifySocket | None = None

    # -- files -------------------------------------------------------------------------------
    @property
    def config(self) -> str:
        return os.path.join(self.root, "etc/rancher/k3s/config.yaml")

    @property
    def settings_file(self) -> str:
        return os.path.join(self.root, "etc/k3snode/config.toml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.root, "daemon.log")

    def write_settings(self, extra: str = "") -> None:
        d = {**DEFAULT_DAEMON, **self.daemon}
        lines = [
            "[node]",
            *([f'role = "{self.role}"'] if self.role else []),
            f'mesh = "{self.mesh}"',
            "[k3s]",
            f'config = "{self.config}"',
            "[discovery]",
            *(f"{k} = {json.dumps(v)}" for k, v in {"provider": "none", **self.discovery}.items()),
            "[daemon]",
            *(f"{k} = {v}" for k, v in d.items()),
            "[health]",
            *([f'listen = "{self.health_listen}"'] if self.health_listen else []),
            f"port = {self.health_port}",
            f"grace = {self.grace}",
            "[paths]",
            f'state_dir = "{self.root}/var/lib/k3snode"',
            f'run_dir = "{self.root}/run/k3snode"',
        ]
        text = "\n".join(lines) + "\n" + (extra or self.extra_toml)
        with open(self.settings_file, "w") as f:
            f.write(text)

    def write_unit(self) -> None:
        units = {"k3s.service": self.unit} if self.unit is not None else {}
        with open(os.path.join(self.root, "systemctl.json"), "w") as f:
            json.dump({"units": units}, f)

    def set_unit(self, **kw) -> None:
        path = os.path.join(self.root, "systemctl.json")
        with open(path) as f:
            state = json.load(f)
        state["units"]["k3s.service"].update(kw)
        with open(path + ".new", "w") as f:
            json.dump(state, f)
        os.replace(path + ".new", path)

    def env(self) -> dict[str, str]:
        bindir = os.path.join(self.root, "bin")
        env = {
            "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "STUB_SYSTEMCTL_STATE": os.path.join(self.root, "systemctl.json"),
            "STUB_SYSTEMCTL_LOG": os.path.join(self.root, "systemctl.log"),
            "STUB_K3S_CONFIG": self.config,
            "NOTIFY_SOCKET": self.notify.path if self.notify else "",
        }
        return clean_env(**{**env, **self.env_extra})

    # -- the daemon --------------------------------------------------------------------------
    def start(self, *args: str, wait_ready: bool = True) -> None:
        self.write_settings()
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "k3snode", "run"]
        self.proc = subprocess.Popen(
            [*cmd, "--config", self.settings_file, *args],
            env=self.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        if wait_ready:
            self.notify.wait("READY=1", timeout=20)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def output(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- observing -----------------------------------------------------------------------------
    def read_config(self) -> str:
        try:
            with open(self.config) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def external_ips(self) -> list[str]:
        import yaml

        text = self.read_config()
        data = yaml.safe_load(text) if text else None
        return list((data or {}).get("node-external-ip", []) or [])

    def wait_external(self, want: list[str], timeout: float = 15) -> None:
        wait_for(lambda: self.external_ips() == want, timeout, what=f"node-external-ip {want}")

    def calls(self) -> list[dict]:
        try:
            with open(os.path.join(self.root, "systemctl.log")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def restarts(self) -> list[dict]:
        return [c for c in self.calls() if c["argv"][:1] == ["restart"]]

    def starts(self) -> list[dict]:
        return [c for c in self.calls() if c["argv"][:1] == ["start"]]

    def status(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "k3snode", "status", "--config", self.settings_file, *args],
            env=clean_env(),
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
        )

    def status_json(self) -> dict:
        out = self.status("--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def http(self, path: str) -> tuple[int, str]:
        """GET from the daemon's health endpoint, inside the node's namespace."""
        code = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    r = urllib.request.urlopen('http://127.0.0.1:{self.health_port}{path}', timeout=5)\n"
            "    print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n"
        )
        out = self.ns.exec(sys.executable, "-c", code)
        status, _, body = out.stdout.partition("\n")
        return int(status), body

    # -- the network ---------------------------------------------------------------------------
    def addr(self, op: str, cidr: str) -> None:
        self.ns.ip("addr", op, cidr, "dev", self.dev)

    def route(self, op: str, via: str) -> None:
        self.ns.ip("route", op, "default", "via", via, "dev", self.dev, "onlink")


@contextlib.contextmanager
def make_node(tmp_path, address: str | None = "5.6.7.8/24", gateway: str = "5.6.7.1", **kw):
    """A node whose veth carries ``address`` with a default route via ``gateway``."""
    root = str(tmp_path)
    for d in ("etc/k3snode", "etc/rancher/k3s", "var/lib/k3snode", "run/k3snode", "bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.symlink(STUB_SYSTEMCTL, os.path.join(root, "bin", "systemctl"))
    with NetNS.create() as ns, NetNS.create("k3sr") as router:
        dev, peer = veth(ns, router)
        node = Node(ns, router, dev, root, peer=peer, **kw)
        if node.health_port == -1:  # -1: any free port
            node.health_port = free_port()
        node.notify = NotifySocket(os.path.join(root, "notify.sock"))
        node.write_unit()
        if address:
            node.addr("add", address)
            node.route("add", gateway)
        try:
            yield node
        finally:
            if node.proc is not None:
                node.stop(signal.SIGKILL)
            node.notify.close()
