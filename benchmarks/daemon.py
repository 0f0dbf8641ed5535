#!/usr/bin/env python3
"""Daemon benchmark: ``k3snode run`` with its default settings, as a real process in a network
namespace that holds the fake AWS metadata service at 169.254.169.254 (AWS recognised from a fake
DMI tree: a namespace cannot fake /sys).

- **metadata-only change** (an Elastic IP re-associated: no netlink event, only metadata tells):
  the fake's public IPv4 changes at a random moment of the poll cycle → the daemon asks
  ``systemctl restart --no-block k3s.service`` (a shell stub records the time). With the defaults
  (poll 20 s ± 10 %, confirm 3 s) the worst case is 22 + 3 s plus discovery; goal ≤ 30 s.
- **interface change**: an address on the node's uplink replaced with ``ip addr`` → restart
  requested. Defaults: debounce 1 s + confirm 3 s.
  Each change waits until ``min_restart_interval`` (default 60 s) has passed since the previous
  restart, so no row measures the rate limit.
- **idle**: a window holding at least 10 polls: CPU of the daemon (all threads, schedstat) next to
  a bare ``python3`` that imports the same libraries and sleeps; RSS; metadata requests (the
  fake's log) per poll and per hour. Goal: CPU ≤ 0.05 % of one core, ≥ 10 polls in the window,
  ≤ 2 requests per poll.
- **syscalls**: ``strace -f`` on the idle daemon's threads for a window holding health checks and
  polls, with the default mesh (wireguard-native, no ``flannel-wg`` yet: K3s is a stub) and with
  mesh "none": syscalls that failed per health check, by name and errno (goal 0; ENOENT from
  looking for an absent file counts), whether pyroute2 was imported (``-X importtime``; goal: not
  while there is no WireGuard interface) and the RSS.

    sudo python benchmarks/daemon.py [-n 3] [--idle 220] [--strace 65] [--only syscalls]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from _bench import Stats, Table, proc_cpu  # noqa: E402
from fakes import dmi_dir  # noqa: E402
from fakes.imds import FakeIMDSProcess  # noqa: E402
from helpers import NetNS, clean_env, free_port, veth, wait_for  # noqa: E402

from k3snode.config.schema import SCHEMA  # noqa: E402

STUB = """#!/bin/sh
# systemctl stand-in: records when a restart was asked for, says the unit is active
case "$1" in
  restart) date +%s.%N >> "$BENCH_RESTARTS" ;;
  show) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nInvocationID=%s\\n' "$(date +%s%N)" ;;
esac
"""

# What the idle daemon has loaded besides its own code: PyYAML, prometheus-client and the
# standard-library modules k3snode's modules import (http.server's http.client included); no
# dataclasses (k3snode.record) and no difflib (imported for a "did you mean" only), checked with
# -X importtime on main after 78ba1f6.
BASELINE = (
    "import http.server, http.client, json, socketserver, threading\n"
    "import yaml, prometheus_client\n"
    "import atexit, encodings.idna, fcntl, glob, heapq, logging, queue\n"
    "import signal, subprocess, textwrap, traceback, unicodedata\n"
    "try:\n    import tomllib\nexcept ImportError:\n    import tomli\n"
    "import time\n"
    "while True: time.sleep(3600)\n"
)

IMDS = "169.254.169.254"
ADDRS = [("5.6.7.8/24", "5.6.7.1"), ("9.9.9.9/24", "9.9.9.1")]
EIPS = ["3.120.45.10", "3.120.45.11"]
DEFAULTS = {s.key: s.default for s in SCHEMA if s.section == "daemon"}
CPU_GOAL = 0.05  # % of one core
REACTION_GOAL = 30.0
MIN_POLLS = 10
# Errors that are not failures: a non-blocking connect in progress, a non-blocking read with
# nothing to read yet, a wait for a child already reaped by another thread.
NOT_FAILURES = {"EINPROGRESS", "EAGAIN", "ECHILD"}


def write_settings(root: str, health_port: int, dmi: str, mesh: str | None = None) -> str:
    """Defaults, except where files go, the fake DMI tree and a free health port; the role
    (the one choice k3snode needs from the user) a server; ``mesh`` when given."""
    path = os.path.join(root, "config.toml")
    node_mesh = f'mesh = "{mesh}"\n' if mesh else ""
    with open(path, "w") as f:
        f.write(f'[node]\nrole = "server"\n{node_mesh}[k3s]\nconfig = "{root}/k3s/config.yaml"\n'
                f'[discovery]\ndmi_dir = "{dmi_dir(dmi)}"\n'
                f"[health]\nport = {health_port}\n"
                f'[paths]\nstate_dir = "{root}/state"\nrun_dir = "{root}/run"\n')  # fmt: skip
    return path


def proc_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def restarts(path: str) -> list[float]:
    try:
        with open(path) as f:
            return [float(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def node(
    dmi: str = "aws", mesh: str | None = None, python: tuple[str, ...] = ()
) -> Iterator[tuple[NetNS, str, str, FakeIMDSProcess, subprocess.Popen]]:
    """The namespace (uplink with ADDRS[0], the fake IMDS on lo) and the running daemon, on AWS
    or (``dmi`` "baremetal") on bare metal, where the uplink's address is the external one;
    ``mesh`` overrides the default mesh, ``python`` are interpreter options (``-X importtime``)."""
    with (
        tempfile.TemporaryDirectory() as root,
        NetNS.create("k3sb") as ns,
        NetNS.create("k3sr") as r,
    ):
        os.makedirs(f"{root}/bin")
        with open(f"{root}/bin/systemctl", "w") as f:
            f.write(STUB)
        os.chmod(f"{root}/bin/systemctl", 0o755)
        dev, _ = veth(ns, r)
        ns.ip("addr", "add", ADDRS[0][0], "dev", dev)
        ns.ip("route", "add", "default", "via", ADDRS[0][1], "dev", dev, "onlink")
        ns.ip("addr", "add", f"{IMDS}/32", "dev", "lo")
        with FakeIMDSProcess("aws", bind=f"{IMDS}:80", netns=ns.name, ipv4=EIPS[0]) as fake:
            env = clean_env(PATH=f"{root}/bin{os.pathsep}{os.environ['PATH']}",
                            BENCH_RESTARTS=f"{root}/restarts")  # fmt: skip
            log = open(f"{root}/daemon.log", "ab")  # noqa: SIM115 - lives as long as the process
            cmd = [sys.executable, *python, "-m", "k3snode", "run", "--config",
                   write_settings(root, free_port(), dmi, mesh)]  # fmt: skip
            p = subprocess.Popen(["ip", "netns", "exec", ns.name, *cmd], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=REPO)  # fmt: skip
            try:
                wait_for(lambda: os.path.exists(f"{root}/run/status.json"), 30, what="status")
                wait_for(lambda: restarts(f"{root}/restarts"), 30, what="the start-up restart")
                yield ns, dev, root, fake, p
            finally:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                log.close()


def daemon_pid(p: subprocess.Popen) -> int:
    """The Python process under ``ip netns exec`` (which execs, so it is the same PID)."""
    return p.pid


def reactions(n: int) -> dict[str, list[float]]:
    """Metadata changes on an AWS node, interface changes on a bare-metal one (on a cloud the
    metadata, not the NIC, says what the external address is)."""
    out: dict[str, list[float]] = {"metadata": [], "interface": []}
    interval = DEFAULTS["min_restart_interval"]
    poll = DEFAULTS["poll_interval"]
    for kind, dmi in (("metadata", "aws"), ("interface", "baremetal")):
        with node(dmi) as (ns, dev, root, fake, _p):
            rfile = f"{root}/restarts"
            eip, addr = 0, 0
            for _ in range(n):
                last = restarts(rfile)[-1]
                time.sleep(max(0.0, last + interval + 1 - time.time()))
                time.sleep(random.uniform(0, poll))  # a random moment of the poll cycle
                before = len(restarts(rfile))
                t0 = time.time()
                if kind == "metadata":
                    eip ^= 1
                    fake.set(ipv4=EIPS[eip])
                else:
                    old, addr = ADDRS[addr], addr ^ 1
                    ns.ip("addr", "add", ADDRS[addr][0], "dev", dev)
                    ns.ip("addr", "del", old[0], "dev", dev)
                    ns.ip("route", "replace", "default", "via", ADDRS[addr][1], "dev", dev,
                          "onlink")  # fmt: skip
                got = wait_for(lambda b=before, f=rfile: restarts(f)[b:], 90, interval=0.02,
                               what=f"a restart after the {kind} change")  # fmt: skip
                out[kind].append(got[0] - t0)
    return out


def idle(seconds: float) -> dict:
    with node() as (ns, _dev, _root, fake, p):
        base = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", BASELINE],
                                env=clean_env())  # fmt: skip
        try:
            time.sleep(10)  # both settled: imports done, first pass, READY and report behind
            pid = daemon_pid(p)
            c0 = {"daemon": proc_cpu(pid), "baseline": proc_cpu(base.pid)}
            r0 = len(fake.requests())
            time.sleep(seconds)
            reqs = fake.requests()[r0:]
            return {
                "cpu": proc_cpu(pid) - c0["daemon"],
                "base_cpu": proc_cpu(base.pid) - c0["baseline"],
                "rss": proc_rss_mib(pid),
                "base_rss": proc_rss_mib(base.pid),
                "requests": len(reqs),
                "polls": sum(1 for q in reqs if "public-ipv4" in q.get("path", "")),
            }
        finally:
            base.kill()
            base.wait()


def imported(log: str, module: str) -> bool:
    """Whether ``-X importtime``'s lines in ``log`` show ``module`` imported."""
    return any(ln.startswith("import time:") and ln.rsplit("|", 1)[-1].strip() == module
               for ln in log.splitlines())  # fmt: skip


def quiet(mesh: str | None, seconds: float) -> dict:
    """The idle daemon with ``mesh`` (None: the default) and no mesh interface: its syscalls
    over ``seconds`` (``strace``), its RSS, and whether pyroute2 was imported (``-X
    importtime``), at start-up or while idle."""
    with node(mesh=mesh, python=("-X", "importtime")) as (_ns, _dev, root, _fake, p):
        time.sleep(10)  # settled: imports done, first pass, READY, first observation behind
        with open(f"{root}/daemon.log", errors="replace") as f:
            start = f.read()
        out = strace(daemon_pid(p), seconds)
        out["rss"] = proc_rss_mib(daemon_pid(p))
        with open(f"{root}/daemon.log", errors="replace") as f:
            later = f.read()[len(start) :]
    out["pyroute2_start"] = imported(start, "pyroute2")
    out["pyroute2_idle"] = imported(later, "pyroute2")
    return out


def strace(pid: int, seconds: float) -> dict:
    """Syscalls of the idle daemon's own threads over ``seconds`` that failed, by name and error
    (processes it forks — ``systemctl`` — are traced too, to follow them, but not counted), and
    the health checks in the window (each asks ``systemctl show`` for K3s's unit)."""
    with tempfile.TemporaryDirectory() as d:
        s = subprocess.Popen(["strace", "-f", "-ff", "-qq", "-o", f"{d}/t", "-p", str(pid)],
                             stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(seconds)
        s.send_signal(signal.SIGINT)
        s.wait(10)
        failed: dict[str, int] = {}
        examples: dict[str, list[str]] = {}
        calls = binds = checks = 0
        for name in os.listdir(d):
            with open(os.path.join(d, name), errors="replace") as f:
                lines = f.read().splitlines()
            execs = [ln for ln in lines if ln.startswith("execve(")]
            if execs:  # a forked child (it execs systemctl), not one of the daemon's threads
                checks += any("systemctl" in ln and '"show"' in ln for ln in execs)
                continue
            for ln in lines:
                m = re.match(r"(\w+)\(.*\) = (-1 (E\w+)|\S+)", ln)
                if not m:
                    continue
                calls += 1
                binds += m.group(1) == "bind"
                if m.group(3) and m.group(3) not in NOT_FAILURES:
                    key = f"{m.group(1)} {m.group(3)}"
                    failed[key] = failed.get(key, 0) + 1
                    if len(examples.setdefault(key, [])) < 6 and ln[:160] not in examples[key]:
                        examples[key].append(ln[:160])
    return {"syscalls": calls, "failed": failed, "binds": binds, "strace_s": seconds,
            "examples": examples, "checks": checks}  # fmt: skip


MESHES = {None: "default (wireguard-native), no flannel-wg", "none": "none"}
PARTS = ("reactions", "idle", "syscalls")


def syscall_rows(t: Table, mesh: str | None, d: dict) -> None:
    """Failing syscalls per health check (ENOENT included: a probe for an absent file is a
    failing syscall too), pyroute2 imported or not, RSS — for one mesh setting."""
    one = lambda x: Stats(x, x, x, 1)  # noqa: E731 - one window, one figure
    what = MESHES[mesh]
    checks = max(1, d["checks"])
    bad = sum(d["failed"].values())
    t.row(f"failing syscalls per health check, mesh {what} ({d['checks']} checks in "
          f"{d['strace_s']:g} s: {d['syscalls']} syscalls, {d['binds']} bind)",
          one(bad / checks), "", ", ".join(f"{k} {v}" for k, v in sorted(d["failed"].items())),
          "0", not bad, unit="")  # fmt: skip
    when = [w for w, k in (("at start-up", "pyroute2_start"), ("while idle", "pyroute2_idle"))
            if d[k]]  # fmt: skip
    t.row(f"pyroute2 imported, mesh {what}", None, "", " and ".join(when) or "no", "no",
          not when)  # fmt: skip
    t.row(f"idle RSS, mesh {what}", one(d["rss"]), "", "", unit="MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=3, help="changes of each kind (default 3)")
    ap.add_argument("--idle", type=float, default=220, help="idle window, s (default 220)")
    ap.add_argument("--strace", type=float, default=65, help="strace window, s (default 65)")
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only this part (repeatable; default: all)")  # fmt: skip
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("needs root and iproute2 (network namespaces)", file=sys.stderr)
        return 2
    parts = args.only or PARTS
    poll, confirm = DEFAULTS["poll_interval"], DEFAULTS["confirm_delay"]
    t = Table(f"k3snode run, default settings (poll {poll:g} s ±10 %, confirm {confirm:g} s, "
              f"debounce {DEFAULTS['debounce']:g} s): {args.n} changes of each kind, idle "
              f"{args.idle:g} s, strace {args.strace:g} s")  # fmt: skip
    one = lambda x: Stats(x, x, x, 1)  # noqa: E731 - one window, one figure
    if "reactions" in parts:
        lat = reactions(args.n)
        worst = poll * 1.1 + confirm
        m = Stats.of(lat["metadata"])
        t.row("metadata-only change → restart requested", m, "poll × 1.1 + confirm",
              f"{m.max / worst:.2f}× (worst)", f"max ≤ {REACTION_GOAL:g} s",
              m.max <= REACTION_GOAL, unit="s")  # fmt: skip
        i = Stats.of(lat["interface"])
        floor = DEFAULTS["debounce"] + confirm
        t.row("interface change → restart requested", i, "debounce + confirm",
              f"{i.median / floor:.2f}×", f"≤ {floor + 0.5:g} s", i.median <= floor + 0.5,
              unit="s")  # fmt: skip
    if "idle" in parts:
        d = idle(args.idle)
        pct = 100 * d["cpu"] / args.idle
        t.row(f"idle CPU over {args.idle:g} s ({d['polls']} polls)", one(d["cpu"]),
              "python3 + same imports, sleeping", f"{d['base_cpu'] * 1000:.1f} ms",
              f"≤ {CPU_GOAL} %: {pct:.4f} %", pct <= CPU_GOAL and d["polls"] >= MIN_POLLS,
              unit="s")  # fmt: skip
        t.row("idle RSS, MiB", one(d["rss"]), "python3 + same imports",
              f"{d['rss'] / d['base_rss']:.2f}×", unit="MiB")  # fmt: skip
        per_poll = d["requests"] / max(1, d["polls"])
        t.row("metadata requests per poll", one(per_poll), "", "", "≤ 2", per_poll <= 2, unit="")
        t.row("metadata requests per hour", one(d["requests"] * 3600 / args.idle), "", "",
              unit="")  # fmt: skip
    examples: dict[str, list[str]] = {}
    if "syscalls" in parts and shutil.which("strace"):
        for mesh in MESHES:
            d = quiet(mesh, args.strace)
            syscall_rows(t, mesh, d)
            for key, lines in d["examples"].items():
                examples[f"mesh {mesh or 'default'}: {key}"] = lines
    t.print()
    for key, lines in examples.items():
        print(f"  {key}: " + " | ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
