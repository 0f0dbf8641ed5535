"""A multi-cloud lab in network namespaces: three "clouds", each a server behind its own NAT
router, joined by an "internet"; ``k3snode run`` on every server with the underlay on; a real
etcd cluster (Debian's etcd 3.4) peering over the underlay exactly as K3s would from ``node-ip``.

Per cloud ``c`` (1..3)::

    node ns  ── veth ──  router ns  ── veth ──  internet ns (routes every public address)
    10.c.0.10/24         10.c.0.1/24            100.64.c.1/24
                         100.64.c.2/24 + the public address (/32)
                         1:1 NAT (nftables, stateless, as AWS/GCP do it): public <-> 10.c.0.10
                         the cloud's metadata service at 169.254.169.254 (tests/fakes/imds.py)

The node holds only its private address; k3snode recognises the cloud from a DMI directory and
asks the fake metadata service, which answers the node's current public address. Peers are named
``sN.lab``, resolved through each node's own hosts file (``/etc/netns/<ns>/hosts``).

Faults: ``reassociate`` (the cloud moves the public address: NAT, route, metadata; DNS as told),
``partition`` / ``heal``, ``kill_wireguard_go``, ``stop_k3snode`` / ``start_k3snode``, ``reboot``.
Observation: ``healthy`` (every member answers /health over the underlay and every member reaches
every other's peer port), a ``Writer`` in cloud 3's node namespace that puts sequential keys and
records every acknowledged one, ``check_writes`` (every acknowledged key on every member, in order).

Usable from tests (``with Lab(tmp) as lab``) and from scripts (``benchmarks/etcd_underlay.py``).
Names (namespaces, WireGuard interfaces, whose UAPI sockets are global) come from ``unique_name``.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from helpers import REPO, NetNS, clean_env, sh, unique_name, veth, wait_for

FAKE_IMDS = os.path.join(REPO, "tests", "fakes", "imds.py")
STUB_SYSTEMCTL = os.path.join(REPO, "tests", "fakes", "systemctl.py")
PORT = 51822
# K3s's embedded etcd (pkg/etcd/etcd.go): heartbeat 500 ms, election timeout 5000 ms
HEARTBEAT_MS = 500
ELECTION_MS = 5000

CLOUDS = (  # provider, DMI fields that make k3snode recognise it, first public address
    ("aws", {"sys_vendor": "Amazon EC2", "product_name": "t3.small"}, "3.120.45.10"),
    ("gcp", {"product_name": "Google Compute Engine", "sys_vendor": "Google"}, "34.89.12.10"),
    ("hetzner", {"sys_vendor": "Hetzner", "product_name": "vServer"}, "49.12.100.10"),
)

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    """Move the calling thread (only it) into network namespace ``name``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


def in_netns(name: str, fn, *args):
    """``fn(*args)`` in a thread inside namespace ``name``; its result (or exception)."""
    out: dict = {}

    def run():
        try:
            enter_netns(name)
            out["v"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out["v"]


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def http_json(url: str, body: dict | None = None, timeout: float = 2.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def nft(ns: NetNS, script: str) -> None:
    r = subprocess.run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], input=script,
                       text=True, capture_output=True)  # fmt: skip
    assert r.returncode == 0, f"nft in {ns.name}: {r.stderr}"


@dataclass
class Cloud:
    index: int  # 1..3
    provider: str
    node: NetNS
    router: NetNS
    root: Path
    public: str
    ifname: str
    uplink: str = ""  # router's interface towards the internet
    imds: object = None
    k3snode: subprocess.Popen | None = None
    etcd: subprocess.Popen | None = None
    k3snode_path: str = REPO  # where `python -m k3snode` is imported from (an "upgrade" moves it)

    @property
    def private(self) -> str:
        return f"10.{self.index}.0.10"

    @property
    def underlay(self) -> str:
        return f"10.99.0.{self.index}"

    @property
    def name(self) -> str:
        return f"s{self.index}"


@dataclass
class Lab:
    tmp: Path
    n: int = 3
    keepalive: int = 25  # [underlay] and [health] as k3snode's defaults unless told
    resolve_interval: float = 60.0
    grace: float = 120.0
    underlay: bool = True  # False: the baseline, etcd on a plain bridge of the nodes
    # [daemon]: None = quick values for tests (a metadata poll every 5 s, so node-external-ip
    # follows a re-association); {} = k3snode's defaults (poll 300 s, debounce 1 s, ...)
    daemon: dict | None = None
    userspace: str = "always"  # [underlay] userspace: "never" in the qemu guest (kernel WireGuard)
    clouds: list[Cloud] = field(default_factory=list)
    last_problem: str = ""  # what `problem` last found wrong
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # -- building ----------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _build(self) -> None:
        s = self._stack
        self.internet = s.enter_context(NetNS.create("k3si"))
        _forward(self.internet)
        if not self.underlay:
            self.internet.ip("link", "add", "br0", "type", "bridge")
            self.internet.ip("link", "set", "br0", "up")
        for c in range(1, self.n + 1):
            provider, dmi, public = CLOUDS[c - 1]
            node = s.enter_context(NetNS.create("k3sn"))
            router = s.enter_context(NetNS.create("k3sr"))
            root = self.tmp / f"s{c}"
            cl = Cloud(c, provider, node, router, root, public, unique_name("ul"))
            self.clouds.append(cl)
            for d in ("etc", "var/lib/k3snode", "run/k3snode", "bin", "dmi", "etcd"):
                (root / d).mkdir(parents=True, exist_ok=True)
            if not self.underlay:  # baseline: every node on one bridge, no NAT, no WireGuard
                _, port = veth(node, self.internet, [f"10.77.0.{c}/24"])
                self.internet.ip("link", "set", port, "master", "br0")
                cl.uplink = port  # its bridge port, in the internet namespace
                continue
            _forward(router)
            up, _ = veth(router, self.internet, [f"100.64.{c}.2/24"], [f"100.64.{c}.1/24"])
            cl.uplink = up
            router.ip("route", "add", "default", "via", f"100.64.{c}.1")
            veth(node, router, [f"{cl.private}/24"], [f"10.{c}.0.1/24"])
            node.ip("route", "add", "default", "via", f"10.{c}.0.1")
            router.ip("addr", "add", "169.254.169.254/32", "dev", "lo")
            self._associate(cl, public)
            for k, v in dmi.items():
                (root / "dmi" / k).write_text(v + "\n")
            cl.imds = s.enter_context(
                _imds(provider, router.name, public, cl.private)  # type: ignore[arg-type]
            )
        if self.underlay:
            self.write_hosts()
            self._keys()
            for cl in self.clouds:
                self.write_settings(cl)
                self.start_k3snode(cl)
            for cl in self.clouds:
                wait_for(lambda cl=cl: self.node_ip(cl), timeout=60, what=f"{cl.name} node-ip")
        for cl in self.clouds:
            self.start_etcd(cl, new=True)
        self.wait_healthy(timeout=90)

    def close(self) -> None:
        for cl in self.clouds:
            for p in (cl.etcd, cl.k3snode):
                if p is not None:
                    _stop(p)
            cl.etcd = cl.k3snode = None
            # wireguard-go (daemonized by k3snode) exits when its interface goes
            cl.node.ip("link", "del", cl.ifname, check=False)
        for cl in self.clouds:
            sock = f"/var/run/wireguard/{cl.ifname}.sock"
            with contextlib.suppress(AssertionError):
                wait_for(lambda sock=sock: not os.path.exists(sock), timeout=10, what=sock)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sock)
        self._stack.close()

    # -- the clouds' network -----------------------------------------------------------------

    def _associate(self, cl: Cloud, public: str, old: str | None = None) -> None:
        """The cloud maps ``public`` 1:1 onto the node's private address (replacing ``old``)."""
        r = cl.router
        if old:
            r.ip("addr", "del", f"{old}/32", "dev", cl.uplink, check=False)
            self.internet.ip("route", "del", f"{old}/32", check=False)
        r.ip("addr", "add", f"{public}/32", "dev", cl.uplink)
        self.internet.ip("route", "replace", f"{public}/32", "via", f"100.64.{cl.index}.2")
        nft(
            r,
            f"""
flush ruleset
table ip cloudnat {{
  chain pre {{ type filter hook prerouting priority -300; policy accept;
    ip daddr {public} ip daddr set {cl.private}
  }}
  chain post {{ type filter hook postrouting priority 100; policy accept;
    ip saddr {cl.private} ip saddr set {public}
  }}
}}
""",
        )
        cl.public = public

    def write_hosts(self, names: dict[int, str] | None = None) -> None:
        """Every node's hosts file: ``sN.lab`` -> the given (default: current) public address."""
        names = names or {cl.index: cl.public for cl in self.clouds}
        text = "169.254.169.254 metadata.google.internal\n" + "".join(
            f"{a} s{i}.lab\n" for i, a in sorted(names.items())
        )
        for cl in self.clouds:
            cl.node.hosts(text)

    def reassociate(self, cl: Cloud, public: str, dns: bool = True) -> None:
        """The cloud gives the server a new public address (an elastic IP moved, a VM
        re-created): NAT and route at once, the metadata answer, and DNS when ``dns``."""
        self._associate(cl, public, old=cl.public)
        cl.imds.set(ipv4=public)
        if dns:
            self.write_hosts()

    def partition(self, cl: Cloud) -> None:
        (cl.router if self.underlay else self.internet).ip("link", "set", cl.uplink, "down")

    def heal(self, cl: Cloud) -> None:
        (cl.router if self.underlay else self.internet).ip("link", "set", cl.uplink, "up")
        if not self.underlay:
            return
        cl.router.ip("route", "replace", "default", "via", f"100.64.{cl.index}.1")
        # routes via a link that went down are gone; put the public address's back
        self.internet.ip("route", "replace", f"{cl.public}/32", "via", f"100.64.{cl.index}.2")

    # -- k3snode -----------------------------------------------------------------------------

    def _keys(self) -> None:
        for cl in self.clouds:
            self.write_settings(cl, peers=False)
            r = subprocess.run(
                ["ip", "netns", "exec", cl.node.name, sys.executable, "-m", "k3snode",
                 "wireguard", "pubkey", "--config", str(cl.root / "etc/config.toml")],
                env=clean_env(), capture_output=True, text=True, cwd=REPO, timeout=60,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            cl.pubkey = r.stdout.strip()  # type: ignore[attr-defined]

    def write_settings(self, cl: Cloud, peers: bool = True) -> None:
        root = cl.root
        (root / "etc/token").write_text("K10lab::server:labtoken\n")
        os.chmod(root / "etc/token", 0o600)
        k3s = (
            "cluster_init = true\n"
            if cl.index == 1
            else f'server = "https://10.99.0.1:6443"\ntoken_file = "{root}/etc/token"\n'
        )
        quick = {"debounce": 0.2, "confirm_delay": 1, "min_restart_interval": 1, "poll_interval": 5}
        daemon = "\n".join(
            f"{k} = {v}" for k, v in (quick if self.daemon is None else self.daemon).items()
        )
        text = f"""\
[node]
role = "server"
mesh = "wireguard-native"
[k3s]
config = "{root}/etc/k3s.yaml"
{k3s}
[discovery]
dmi_dir = "{root}/dmi"
timeout = 5
[daemon]
{daemon}
[health]
port = 0
grace = {self.grace}
[paths]
state_dir = "{root}/var/lib/k3snode"
run_dir = "{root}/run/k3snode"
[underlay]
enabled = true
interface = "{cl.ifname}"
address = "{cl.underlay}/24"
listen_port = {PORT}
private_key_file = "{root}/var/lib/k3snode/underlay.key"
userspace = "{self.userspace}"
keepalive = {self.keepalive}
resolve_interval = {self.resolve_interval}
"""
        if peers:
            for o in self.clouds:
                text += f"""
[[underlay.peers]]
name = "{o.name}"
public_key = "{o.pubkey}"
endpoint = "{o.name}.lab:{PORT}"
address = "{o.underlay}"
"""  # type: ignore[attr-defined]
        (root / "etc/config.toml").write_text(text)
        (root / "systemctl.json").write_text(
            json.dumps({"units": {"k3s.service": {"load": "loaded", "active": "active",
                                                  "sub": "running", "invocation": 1}}})
        )  # fmt: skip
        stub = root / "bin/systemctl"
        if not stub.exists():
            stub.symlink_to(STUB_SYSTEMCTL)

    def start_k3snode(self, cl: Cloud) -> None:
        env = clean_env(
            PATH=f"{cl.root}/bin{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            STUB_SYSTEMCTL_STATE=str(cl.root / "systemctl.json"),
            STUB_SYSTEMCTL_LOG=str(cl.root / "systemctl.log"),
            STUB_K3S_CONFIG=str(cl.root / "etc/k3s.yaml"),
        )
        env["PYTHONPATH"] = cl.k3snode_path
        log = open(cl.root / "k3snode.log", "ab")  # noqa: SIM115 - the child keeps it
        cl.k3snode = subprocess.Popen(
            ["ip", "netns", "exec", cl.node.name, sys.executable, "-m", "k3snode", "run",
             "--config", str(cl.root / "etc/config.toml")],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd="/",
        )  # fmt: skip
        log.close()

    def stop_k3snode(self, cl: Cloud) -> None:
        if cl.k3snode is not None:
            _stop(cl.k3snode)
            cl.k3snode = None

    def upgrade_k3snode(self, cl: Cloud) -> None:
        """Stop k3snode, start it again from a copy of the package elsewhere (a new install)."""
        new = self.tmp / f"upgrade-{cl.name}-{time.monotonic_ns()}"
        shutil.copytree(Path(REPO) / "k3snode", new / "k3snode",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        self.stop_k3snode(cl)
        cl.k3snode_path = str(new)
        self.start_k3snode(cl)

    def k3snode_log(self, cl: Cloud) -> str:
        try:
            return (cl.root / "k3snode.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def node_ip(self, cl: Cloud) -> str | None:
        """``node-ip`` from the K3s config k3snode wrote (K3s derives etcd's URLs from it)."""
        import yaml

        try:
            data = yaml.safe_load((cl.root / "etc/k3s.yaml").read_text()) or {}
        except FileNotFoundError:
            return None
        ips = data.get("node-ip") or []
        return ips[0] if ips else None

    def wireguard_go_pid(self, cl: Cloud) -> int | None:
        want = ["wireguard-go", cl.ifname]
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = [a.decode() for a in f.read().split(b"\0") if a]
            except OSError:
                continue
            if len(argv) >= 2 and os.path.basename(argv[0]) == want[0] and argv[-1] == want[1]:
                return int(pid)
        return None

    def kill_wireguard_go(self, cl: Cloud) -> int:
        pid = self.wireguard_go_pid(cl)
        assert pid is not None, f"no wireguard-go for {cl.ifname}"
        os.kill(pid, signal.SIGKILL)
        return pid

    # -- etcd --------------------------------------------------------------------------------

    def member_ip(self, cl: Cloud) -> str:
        if not self.underlay:
            return f"10.77.0.{cl.index}"
        ip = self.node_ip(cl)
        assert ip, f"{cl.name}: k3snode wrote no node-ip"
        return ip

    def start_etcd(self, cl: Cloud, new: bool = False) -> None:
        """etcd as K3s runs it from ``node-ip``: peer URL :2380, client URLs :2379 on node-ip and
        127.0.0.1 (plain HTTP here; K3s uses TLS), heartbeat 500 ms, election 5000 ms, pre-vote
        on (etcd 3.5's default)."""
        ip = self.member_ip(cl)
        cluster = ",".join(f"{o.name}=http://{self.member_ip(o)}:2380" for o in self.clouds)
        log = open(cl.root / "etcd.log", "ab")  # noqa: SIM115 - the child keeps it
        cl.etcd = cl.node.popen(
            ["etcd", "--name", cl.name, "--data-dir", str(cl.root / "etcd"),
             "--listen-peer-urls", f"http://{ip}:2380",
             "--initial-advertise-peer-urls", f"http://{ip}:2380",
             "--listen-client-urls", f"http://{ip}:2379,http://127.0.0.1:2379",
             "--advertise-client-urls", f"http://{ip}:2379",
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--initial-cluster-token", "k3snode-lab",
             "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS),
             "--pre-vote",  # etcd 3.5 (K3s's) has it on by default; 3.4 off
             "--log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def stop_etcd(self, cl: Cloud, sig: int = signal.SIGTERM) -> None:
        if cl.etcd is not None:
            _stop(cl.etcd, sig)
            cl.etcd = None

    def crash(self, cl: Cloud) -> None:
        """The server goes down hard: etcd and k3snode killed, the interface (kernel state) gone
        with wireguard-go."""
        self.stop_etcd(cl, signal.SIGKILL)
        if not self.underlay:
            return
        if cl.k3snode is not None:
            _stop(cl.k3snode, signal.SIGKILL)
            cl.k3snode = None
        pid = self.wireguard_go_pid(cl)
        cl.node.ip("link", "del", cl.ifname, check=False)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"/var/run/wireguard/{cl.ifname}.sock")

    def boot(self, cl: Cloud) -> None:
        """The server boots: k3snode brings the underlay up (the same key), then etcd starts on
        node-ip with its old data dir (as K3s, ordered after k3snode, would)."""
        if self.underlay:
            self.start_k3snode(cl)
            wait_for(lambda: _has_addr(cl), timeout=60, what=f"{cl.name} underlay back")
        self.start_etcd(cl)

    def reboot(self, cl: Cloud) -> None:
        self.crash(cl)
        self.boot(cl)

    # -- observing ---------------------------------------------------------------------------

    def observer(self) -> Cloud:
        """The cloud whose node namespace the writer and checker run in (never faulted)."""
        return self.clouds[-1]

    def healthy(self, timeout: float = 1.5) -> bool:
        return self.problem(timeout) is None

    def problem(self, timeout: float = 1.5) -> str | None:
        """None when every member answers /health (asked over the network from the observer's
        node) and every member reaches every other member's peer port; else what is wrong."""
        obs = self.observer()

        def health() -> str | None:
            for cl in self.clouds:
                try:
                    url = f"http://{self.member_ip(cl)}:2379/health"
                    got = http_json(url, timeout=timeout)["health"]
                except (OSError, ValueError, KeyError) as e:
                    return f"{cl.name} /health: {e}"
                if got not in (True, "true"):
                    return f"{cl.name} /health: {got}"
            return None

        bad = in_netns(obs.node.name, health)
        if bad:
            self.last_problem = bad
            return bad
        for cl in self.clouds:
            for o in self.clouds:
                if o is not cl and not in_netns(cl.node.name, _reach, self.member_ip(o), timeout):
                    self.last_problem = f"{cl.name} cannot reach {o.name}:2380"
                    return self.last_problem
        return None

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds until ``healthy``; AssertionError after ``timeout``."""
        t0 = time.monotonic()
        try:
            wait_for(self.healthy, timeout=timeout, interval=0.2, what="all etcd members healthy")
        except AssertionError as e:
            raise AssertionError(f"{e}; last problem: {self.last_problem}") from None
        return time.monotonic() - t0

    def metric(self, name: str, cl: Cloud | None = None) -> float:
        cl = cl or self.observer()

        def get() -> float:
            with urllib.request.urlopen("http://127.0.0.1:2379/metrics", timeout=3) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith(name + " ") or line.startswith(name + "{"):
                        return float(line.rsplit(" ", 1)[1])
            return 0.0

        return in_netns(cl.node.name, get)

    def etcdctl(self, *args: str, check: bool = True) -> str:
        eps = ",".join(f"http://{self.member_ip(cl)}:2379" for cl in self.clouds)
        r = self.observer().node.exec("env", "ETCDCTL_API=3", "etcdctl", "--endpoints", eps,
                                      "--command-timeout=15s", *args, check=False)  # fmt: skip
        assert r.returncode == 0 or not check, f"etcdctl {' '.join(args)}: {r.stderr}"
        return r.stdout

    def leader(self) -> Cloud | None:
        """The member that leads now (by etcd's own status), or None."""
        got = json.loads(self.etcdctl("endpoint", "status", "-w", "json"))
        ids = {st["Status"]["header"]["member_id"]: st["Endpoint"] for st in got}
        lead = {st["Status"]["leader"] for st in got}
        if len(lead) != 1:
            return None
        ep = ids.get(lead.pop())
        return next((cl for cl in self.clouds if ep and f"//{self.member_ip(cl)}:" in ep), None)

    def make_leader(self, cl: Cloud) -> None:
        """Hand leadership to ``cl`` (``etcdctl move-leader``) so a fault hits the leader."""
        if self.leader() is cl:
            return
        got = json.loads(self.etcdctl("member", "list", "-w", "json"))
        (mid,) = [m["ID"] for m in got["members"] if m["name"] == cl.name]
        for _ in range(3):  # a slow machine (the qemu guest) may time a transfer out
            self.etcdctl("move-leader", f"{mid:x}", check=False)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: self.leader() is cl, timeout=20, what=f"{cl.name} leads")
                return
        raise AssertionError(f"{cl.name} did not become the leader")

    def leader_changes(self) -> int:
        return int(self.metric("etcd_server_leader_changes_seen_total"))

    def check_writes(self, acked: list[tuple[int, int]]) -> None:
        """Every acknowledged write is on every member, with its value, in order: key i's
        revision grows with i. ``acked``: (i, revision the put answered)."""
        obs = self.observer()
        last_rev = max((r for _, r in acked), default=0)
        for cl in self.clouds:
            url = f"http://{self.member_ip(cl)}:2379/v3/kv/range"
            body = {"key": _b64("w/"), "range_end": _b64("w0"), "serializable": True}

            def fetch(url=url, body=body):
                def caught_up():
                    try:
                        got = http_json(url, body, timeout=5)
                    except OSError:
                        return None
                    rev = int(got["header"]["revision"])
                    return got if rev >= last_rev else None

                return wait_for(caught_up, timeout=30, interval=0.2, what=f"{url} caught up")

            got = in_netns(obs.node.name, fetch)
            have = {}
            for kv in got.get("kvs", []):
                k = base64.b64decode(kv["key"]).decode()
                have[int(k[2:])] = (base64.b64decode(kv["value"]).decode(), int(kv["mod_revision"]))
            missing = [i for i, _ in acked if i not in have]
            assert not missing, f"{cl.name}: acknowledged writes lost: {missing[:20]}"
            for i, _ in acked:
                assert have[i][0] == str(i), f"{cl.name}: w/{i:08d} = {have[i][0]!r}"
            revs = [have[i][1] for i, _ in sorted(acked)]
            assert revs == sorted(revs) and len(set(revs)) == len(revs), (
                f"{cl.name}: acknowledged writes out of order"
            )


class Writer:
    """Puts ``w/00000001``, ``w/00000002``, … with value i through the observer's local member,
    one at a time; an acknowledged put is recorded (i, revision, time) before the next key. A
    failed put is retried with the same key and value. Runs in a thread in the observer's node
    namespace, outside every fault."""

    def __init__(self, lab: Lab, pause: float = 0.02, timeout: float = 2.0) -> None:
        self.lab = lab
        self.pause = pause
        self.timeout = timeout
        self.acked: list[tuple[int, int]] = []
        self.ack_times: list[float] = []
        self.failures: list[float] = []  # monotonic times of failed attempts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        wait_for(lambda: len(self.acked) >= 5, timeout=30, what="first writes acknowledged")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        enter_netns(self.lab.observer().node.name)
        url = "http://127.0.0.1:2379/v3/kv/put"
        i = 1
        while not self._stop.is_set():
            key = f"w/{i:08d}"
            try:
                got = http_json(url, {"key": _b64(key), "value": _b64(str(i))}, self.timeout)
                rev = int(got["header"]["revision"])
            except (OSError, ValueError, KeyError):
                self.failures.append(time.monotonic())
                self._stop.wait(0.1)
                continue
            self.acked.append((i, rev))
            self.ack_times.append(time.monotonic())
            i += 1
            self._stop.wait(self.pause)

    def unavailable(self, since: float) -> float:
        """The longest time without an acknowledgement after ``since`` (monotonic)."""
        times = [since] + [t for t in self.ack_times if t > since]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


@dataclass(frozen=True)
class Outcome:
    """One fault, measured: seconds from the fault to all members healthy, leader changes the
    observer's member saw, the longest time without an acknowledged write, failed put attempts,
    acknowledged writes (all checked present and in order)."""

    fault: str
    recovery: float
    leader_changes: int
    unavailable: float
    failed_puts: int
    acked: int
    problem: str = ""  # the last thing seen wrong before the cluster was healthy again


def measure(
    lab: Lab,
    fault: str,
    inject,
    heal=None,
    timeout: float = 120,
    settle: float = 1.0,
    leader: Cloud | None = None,
) -> Outcome:
    """Run the writer, ``inject()`` the fault, then ``heal()`` if given (a partition healed, a
    crashed server booted: the clock for recovery starts when inject returns), wait for health, keep writing
    ``settle`` s more, then check every acknowledged write. ``leader``: make that member the
    leader first (the fault then hits the leader). Returns an Outcome."""
    lab.wait_healthy(timeout=60)
    if leader is not None:
        lab.make_leader(leader)
    leaders = lab.leader_changes()
    with Writer(lab) as w:
        time.sleep(settle)
        lab.last_problem = ""
        t_fault = time.monotonic()
        inject()
        t0 = time.monotonic()
        if heal is not None:
            heal()
        lab.wait_healthy(timeout)
        recovery = time.monotonic() - t0
        time.sleep(settle)
    lab.check_writes(w.acked)
    return Outcome(fault, recovery, lab.leader_changes() - leaders, w.unavailable(t_fault),
                   len(w.failures), len(w.acked), lab.last_problem)  # fmt: skip


def _forward(ns: NetNS) -> None:
    """IPv4 forwarding on in ``ns`` (no sysctl binary needed: the qemu guest has none)."""
    ns.exec("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")


def _reach(target: str, timeout: float, port: int = 2380) -> bool:
    try:
        with socket.create_connection((target, port), timeout=timeout):
            return True
    except OSError:
        return False


def _has_addr(cl: Cloud) -> bool:
    r = sh("ip", "-n", cl.node.name, "-o", "addr", "show", "dev", cl.ifname, check=False)
    return r.returncode == 0 and f" {cl.underlay}/" in r.stdout


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _imds(provider: str, netns: str, public: str, private: str):
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from fakes.imds import FakeIMDSProcess

    with FakeIMDSProcess(provider, netns=netns, bind="169.254.169.254:80", ipv4=public,
                         private_ipv4=private, imdsv1=False) as f:  # fmt: skip
        yield f


def have_lab_tools() -> str | None:
    """None when everything the lab needs is installed, else what is missing."""
    missing = [c for c in ("wireguard-go", "etcd", "nft", "ip") if not shutil.which(c)]
    return ", ".join(missing) or None
