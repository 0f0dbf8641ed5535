#!/usr/bin/env python3
"""Daemon benchmark: how fast ``k3snode run`` reacts to an address change, and what it costs idle.

Measured in one run, as root (network namespaces), with the real daemon as a process:

- **reaction**: an address change on the node's interface (``ip addr`` in its namespace) → the
  daemon runs ``systemctl restart --no-block k3s.service`` (a two-line shell stub that records the
  time). Median, min and max over N changes, next to the debounce setting (confirm delay 0, so the
  row measures notice + debounce + discovery + write). Aim: median ≤ debounce + 0.5 s.
- **idle**: ``k3snode run`` (health endpoint on, poll timer default) left alone for the window:
  RSS at the end and CPU time used during the window, next to a bare ``python3`` that imports the
  same libraries (PyYAML, prometheus-client and the standard-library modules k3snode uses) and
  sleeps, measured the same
  way in the same run. Aim: CPU < 0.1 % of one core; RSS ≤ 1.2× the baseline.

    sudo python benchmarks/daemon.py [-n 20] [--debounce 1.0] [--idle 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from helpers import NetNS, clean_env, veth, wait_for  # noqa: E402

STUB = """#!/bin/sh
# systemctl stand-in: records when a restart was asked for, says the unit is active
case "$1" in
  restart) date +%s.%N >> "$BENCH_RESTARTS" ;;
  show) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nInvocationID=%s\\n' "$(date +%s%N)" ;;
esac
"""

# The libraries the idle daemon has loaded besides its own code (measured as the difference of
# sys.modules after a first pass and report, mesh none, interface discovery): PyYAML and
# prometheus-client, and from the standard library what k3snode's modules import. The interfaces
# are read with the stdlib rtnetlink reader, so pyroute2 is not among them.
BASELINE = (
    "import http.server, json, socketserver, threading\n"
    "import yaml, prometheus_client\n"
    "import atexit, dataclasses, difflib, encodings.idna, fcntl, glob, heapq, logging, queue\n"
    "import signal, subprocess, textwrap, traceback, unicodedata\n"
    "try:\n    import tomllib\nexcept ImportError:\n    import tomli\n"
    "import time\n"
    "while True: time.sleep(3600)\n"
)

A = ("5.6.7.8/24", "5.6.7.1")
B = ("9.9.9.9/24", "9.9.9.1")


def settings(root: str, debounce: float, health_port: int) -> str:
    path = os.path.join(root, "config.toml")
    with open(path, "w") as f:
        f.write(
            f"""[node]
role = "server"
mesh = "none"
[k3s]
config = "{root}/k3s/config.yaml"
[discovery]
provider = "none"
[daemon]
debounce = {debounce}
confirm_delay = 0
min_restart_interval = 0
restart_timeout = 5
[health]
port = {health_port}
[paths]
state_dir = "{root}/state"
run_dir = "{root}/run"
"""
        )
    return path


def proc_cpu(pid: int) -> float:
    """CPU seconds of all live threads, in nanoseconds' precision (``/proc/*/stat`` counts 10 ms
    ticks, too coarse for an idle process)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e9


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


def start_daemon(ns: NetNS, root: str, cfg: str) -> subprocess.Popen:
    env = clean_env(
        PATH=f"{root}/bin{os.pathsep}{os.environ['PATH']}",
        BENCH_RESTARTS=f"{root}/restarts",
    )
    log = open(f"{root}/daemon.log", "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns.name, sys.executable, "-m", "k3snode", "run", "--config", cfg],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    wait_for(lambda: os.path.exists(f"{root}/run/status.json"), 30, what="the daemon's status file")
    return p


def stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@contextlib.contextmanager
def node() -> Iterator[tuple[NetNS, str, str]]:
    """A namespace whose uplink carries address A, and a root whose bin/ has the systemctl stub."""
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
        ns.ip("addr", "add", A[0], "dev", dev)
        ns.ip("route", "add", "default", "via", A[1], "dev", dev, "onlink")
        yield ns, dev, root


def reaction(n: int, debounce: float) -> list[float]:
    with node() as (ns, dev, root):
        p = start_daemon(ns, root, settings(root, debounce, 0))
        try:
            wait_for(lambda: len(restarts(f"{root}/restarts")) >= 1, 30, what="start-up restart")
            time.sleep(debounce + 1)
            out = []
            cur, other = A, B
            for _ in range(n):
                before = len(restarts(f"{root}/restarts"))
                t0 = time.time()
                ns.ip("addr", "add", other[0], "dev", dev)
                ns.ip("addr", "del", cur[0], "dev", dev)
                ns.ip("route", "replace", "default", "via", other[1], "dev", dev, "onlink")
                got = wait_for(
                    lambda b=before: restarts(f"{root}/restarts")[b:],
                    debounce + 20,
                    interval=0.01,
                    what="a restart",
                )
                out.append(got[0] - t0)
                cur, other = other, cur
                time.sleep(debounce + 0.5)
        finally:
            stop(p)
    return out


def idle(seconds: float) -> tuple[dict, dict]:
    with node() as (ns, _dev, root):
        daemon = start_daemon(ns, root, settings(root, 1.0, 19181))
        base = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, "-c", BASELINE], env=clean_env()
        )
        try:
            time.sleep(5)  # both settled: imports done, first pass and report behind
            c0 = {"daemon": proc_cpu(daemon.pid), "baseline": proc_cpu(base.pid)}
            time.sleep(seconds)
            out = {}
            for name, p in (("daemon", daemon), ("baseline", base)):
                out[name] = {
                    "cpu": proc_cpu(p.pid) - c0[name],
                    "rss": proc_rss_mib(p.pid),
                }
        finally:
            stop(daemon)
            base.kill()
            base.wait()
    return out["daemon"], out["baseline"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20, help="address changes (default 20)")
    ap.add_argument("--debounce", type=float, default=1.0, help="[daemon] debounce (default 1.0)")
    ap.add_argument("--idle", type=float, default=60, help="idle window in seconds (default 60)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("needs root and iproute2 (network namespaces)", file=sys.stderr)
        return 2
    lat = reaction(args.n, args.debounce)
    med = statistics.median(lat)
    d, b = idle(args.idle)
    print(
        f"\nk3snode run, {args.n} address changes, debounce {args.debounce:g}s; idle {args.idle:g}s\n"
    )
    print("| measure | k3snode run | baseline | ratio | aim |")
    print("|---|---|---|---|---|")
    print(
        f"| reaction: address change → restart requested (median; min–max) | {med:.2f} s "
        f"({min(lat):.2f}–{max(lat):.2f}) | debounce {args.debounce:.2f} s | "
        f"{med / args.debounce:.2f}× | ≤ {args.debounce + 0.5:.2f} s: "
        f"{'met' if med <= args.debounce + 0.5 else 'missed'} |"
    )
    pct = lambda cpu: 100 * cpu / args.idle  # noqa: E731
    print(
        f"| idle CPU over {args.idle:g} s | {d['cpu'] * 1000:.1f} ms ({pct(d['cpu']):.4f} %) | "
        f"{b['cpu'] * 1000:.1f} ms ({pct(b['cpu']):.4f} %) | – | < 0.1 %: "
        f"{'met' if pct(d['cpu']) < 0.1 else 'missed'} |"
    )
    ratio = d["rss"] / b["rss"]
    print(
        f"| idle RSS | {d['rss']:.1f} MiB | {b['rss']:.1f} MiB (python3 + same imports) | "
        f"{ratio:.2f}× | ≤ 1.2×: {'met' if ratio <= 1.2 else 'missed'} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
