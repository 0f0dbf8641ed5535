#!/usr/bin/env python3
"""What WireGuard costs k3snode: the X25519 key (``cryptography``) against ``wg pubkey``, and the
underlay keeper's no-op pass (what the daemon does every 5 s) at 10, 100, 1000 and 5000 peers
against ``wg show IF dump`` of the same device, and the health check of what the pass saw,
interleaved in one run inside the interface's namespace (wall time: both wait for wireguard-go).

Goals: the pass is linear (least-squares exponent of time over peers ≤ 1.1); at 1000 peers it
costs ≤ 3× ``wg show dump``; the public key is derived once, not per pass; the periodic health
check opens no socket, file or process (it judges the pass's result).

    sudo python benchmarks/wireguard.py [ROUNDS]   # the pass rows need root and wireguard-go
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from _bench import Stats, Table, fit_exponent, interleaved  # noqa: E402

from k3snode.mesh.wg import keys  # noqa: E402

SIZES = (10, 100, 1000, 5000)
EXPONENT_GOAL = 1.1
DUMP_GOAL = 3.0

# Runs inside the namespace: N passes of one Keeper (as the daemon keeps one), interleaved
# with `wg show IF dump` and the health check of the pass's result; prints JSON with the samples,
# how often the key was derived, and the sockets / files / processes each opened (audit hooks).
INNER = """
import json, subprocess, sys, time
sys.path.insert(0, sys.argv[4])
from _bench import interleaved
from k3snode.mesh.underlay import checks
from k3snode.mesh.underlay.keeper import Keeper
from k3snode.mesh.wg import keys
from k3snode.config.load import load
derived = [0]
real = keys._public  # the one X25519 derivation every path (underlay, userspace backend) goes through
def counting(k):
    derived[0] += 1
    return real(k)
keys._public = counting
IO = ("socket.__new__", "open", "subprocess.Popen")  # audit events: sockets, files, processes
io = {"pass": [], "check": []}
current = [None]
def hook(event, args):
    if current[0] is not None and event in IO:
        io[current[0]].append(event)
sys.addaudithook(hook)
u = Keeper(load(sys.argv[1], env={}))
first = u.run_once()
assert first.changed
u.run_once()  # the first read of the configured device derives its public key, once per key
def noop():
    current[0] = "pass"
    try:
        r = u.run_once()
    finally:
        current[0] = None
    assert not r.changed, r.changes
def check():
    current[0] = "check"
    try:
        obs = checks.observe(u.settings, u.seen, peer_judge=u.judge)
    finally:
        current[0] = None
    assert obs.check == "underlay" and obs.facts["peers"] == sys.argv[5], obs.facts
ifname, rounds = sys.argv[2], int(sys.argv[3])
dump = lambda: subprocess.run(["wg", "show", ifname, "dump"], stdout=subprocess.DEVNULL, check=True)
before = derived[0]
got = interleaved({"pass": noop, "dump": dump, "check": check}, rounds, clock=time.perf_counter)
calls = rounds + 1  # with the warm-up call
print(json.dumps({k: v.__dict__ for k, v in got.items()} | {
    "derived_per_pass": (derived[0] - before) / calls,
    "sockets_per_pass": io["pass"].count("socket.__new__") / calls,
    "io_per_check": len(io["check"]) / calls}))
"""


# Runs inside the namespace under strace (this process only): a first pass, then N no-op passes
# and N health checks, each stretch between two marker calls that fail on purpose.
TRACED = """
import os, sys
from k3snode.mesh.underlay import checks
from k3snode.mesh.underlay.keeper import Keeper
from k3snode.config.load import load
u = Keeper(load(sys.argv[1], env={}))
u.run_once()
n = int(sys.argv[2])
def mark(what):
    os.access("/k3snode-bench-mark-" + what, os.F_OK)
mark("pass")
for _ in range(n):
    assert not u.run_once().changed
mark("check")
for _ in range(n):
    checks.observe(u.settings, u.seen, peer_judge=u.judge)
mark("end")
"""
STRACE_PEERS = 100
STRACE_ROUNDS = 20


def peer_address(i: int) -> str:
    """The i-th peer's underlay address in 10.99.0.0/16, from 10.99.0.2 on (any count to 65000)."""
    n = i + 2
    return f"10.99.{n // 256}.{n % 256}"


def write_settings(path: str, tmp: str, ifname: str, peers: list[str]) -> None:
    with open(path, "w") as f:
        f.write(f'[underlay]\nenabled = true\ninterface = "{ifname}"\naddress = "10.99.0.1/16"\n'
                f'private_key_file = "{tmp}/k"\n')  # fmt: skip
        for i, pub in enumerate(peers):
            f.write(f'[[underlay.peers]]\npublic_key = "{pub}"\n'
                    f'endpoint = "192.0.2.{i % 250 + 1}:{51822 + i // 250}"\n'
                    f'address = "{peer_address(i)}"\n')  # fmt: skip


def pass_rows(t: Table, rounds: int) -> None:
    if os.geteuid() != 0 or not shutil.which("wireguard-go") or not shutil.which("wg"):
        print("(pass rows skipped: they need root, wireguard-go and wg)")
        return
    pubs = [keys.encode(os.urandom(32)) for _ in range(max(SIZES))]  # any 32 bytes is a key
    medians, dumps = [], []
    for n in SIZES:
        ns, ifname = f"k3snbench{os.getpid()}", f"wgb{os.getpid() % 100000}"
        tmp = tempfile.mkdtemp()
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            cfg = os.path.join(tmp, "c.toml")
            write_settings(cfg, tmp, ifname, pubs[:n])
            r = rounds if n <= 1000 else max(5, rounds // 3)
            out = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", INNER, cfg, ifname, str(r),
                 os.path.join(REPO, "benchmarks"), str(n)],
                env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            got = json.loads(out.stdout)
        finally:
            subprocess.run(["ip", "-n", ns, "link", "del", ifname], check=False)
            subprocess.run(["ip", "netns", "del", ns], check=False)
            shutil.rmtree(tmp, ignore_errors=True)
        p, d = Stats(**got["pass"]), Stats(**got["dump"])
        medians.append(p.median)
        dumps.append(d.median)
        ratio = p.median / d.median
        t.row(f"`wg show dump`, {n} peers (baseline)", d)
        goal = n == 1000
        t.row(f"no-op underlay pass, {n} peers", p, "wg show dump", f"{ratio:.2f}×",
              f"≤ {DUMP_GOAL:g}×" if goal else "", ratio <= DUMP_GOAL if goal else None)  # fmt: skip
        c = Stats(**got["check"])
        t.row(f"underlay health check of the pass's result, {n} peers", c, "no-op pass",
              f"{c.median / p.median:.2f}×")  # fmt: skip
        io = got["io_per_check"]
        t.row(f"sockets, files, processes opened per health check, {n} peers",
              Stats(io, io, io, r), "", "", "0", io == 0, unit="")  # fmt: skip
        sp = got["sockets_per_pass"]
        t.row(f"sockets opened per no-op pass, {n} peers", Stats(sp, sp, sp, r), unit="")
        t.row(f"key derivations per no-op pass (after the first), {n} peers",
              Stats(got["derived_per_pass"], got["derived_per_pass"], got["derived_per_pass"], r),
              "", "", "0", got["derived_per_pass"] == 0, unit="")  # fmt: skip
    k = fit_exponent(SIZES, medians)
    t.row(f"fitted exponent of the pass over {', '.join(map(str, SIZES))} peers", None, "", f"{k:.2f}",
          f"≤ {EXPONENT_GOAL}", k <= EXPONENT_GOAL)  # fmt: skip
    t.row("fitted exponent of `wg show dump` (wireguard-go's own growth)", None, "",
          f"{fit_exponent(SIZES, dumps):.2f}")  # fmt: skip


def syscall_rows(t: Table) -> None:
    """strace of one process: what a no-op pass and a health check ask of the kernel."""
    if os.geteuid() != 0 or not shutil.which("wireguard-go") or not shutil.which("strace"):
        print("(syscall rows skipped: they need root, wireguard-go and strace)")
        return
    pubs = [keys.encode(os.urandom(32)) for _ in range(STRACE_PEERS)]
    ns, ifname = f"k3snbench{os.getpid()}", f"wgs{os.getpid() % 100000}"
    tmp = tempfile.mkdtemp()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cfg = os.path.join(tmp, "c.toml")
        write_settings(cfg, tmp, ifname, pubs)
        trace = os.path.join(tmp, "trace")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "strace", "-qq", "-o", trace, sys.executable, "-c",
             TRACED, cfg, str(STRACE_ROUNDS)],
            env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        with open(trace) as f:
            lines = f.read().splitlines()
    finally:
        subprocess.run(["ip", "-n", ns, "link", "del", ifname], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    spans: dict[str, list[str]] = {"pass": [], "check": []}
    where = None
    for line in lines:
        if "/k3snode-bench-mark-" in line:
            where = line.split("/k3snode-bench-mark-", 1)[1].split('"', 1)[0]
            continue
        if where in spans:
            spans[where].append(line)
    for what, label in (("pass", "no-op pass"), ("check", "health check of the pass's result")):
        calls = spans[what]
        failed = [c for c in calls if " = -1 " in c]
        per, bad = len(calls) / STRACE_ROUNDS, len(failed) / STRACE_ROUNDS
        t.row(f"syscalls per {label}, {STRACE_PEERS} peers (strace)", Stats(per, per, per, 1),
              "", "", "0" if what == "check" else "", per == 0 if what == "check" else None,
              unit="")  # fmt: skip
        t.row(f"failing syscalls per {label}, {STRACE_PEERS} peers", Stats(bad, bad, bad, 1),
              "", "", "0", bad == 0, unit="")  # fmt: skip
        for c in sorted(set(c.split("(", 1)[0] + " " + c.rsplit("= ", 1)[-1] for c in failed)):
            print(f"  failing in the {what}: {c}")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    t = Table(f"WireGuard: medians of {rounds} interleaved rounds (ms), {sys.version.split()[0]}")
    priv = keys.generate_private()
    if shutil.which("wg"):
        got = interleaved({
            "py": lambda: keys.public_key(priv),
            "wg": lambda: subprocess.run(["wg", "pubkey"], input=priv.reveal().encode(),
                                         capture_output=True, check=True),
        }, rounds, clock=time.perf_counter)  # fmt: skip
        t.row("`wg pubkey` process (baseline)", got["wg"])
        t.row("X25519 public key, cryptography (once per key)", got["py"], "wg pubkey",
              f"{got['py'].median / got['wg'].median:.2f}×")  # fmt: skip
    pass_rows(t, rounds)
    syscall_rows(t)
    t.print()


if __name__ == "__main__":
    main()
