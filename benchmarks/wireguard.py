#!/usr/bin/env python3
"""What WireGuard costs k3snode: the X25519 key (``cryptography``) against ``wg pubkey``, and the
underlay's no-op pass (what the daemon does every health interval) at 10, 100, 1000 and 5000
peers against ``wg show IF dump`` of the same device, interleaved in one run inside the
interface's namespace (wall time: both wait for wireguard-go).

Goals: the pass is linear (least-squares exponent of time over peers ≤ 1.1); at 1000 peers it
costs ≤ 3× ``wg show dump``; the public key is derived once, not per pass.

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

# Runs inside the namespace: N passes of one Underlay (as the daemon keeps one), interleaved
# with `wg show IF dump`; prints JSON with the samples and how often the key was derived.
INNER = """
import json, subprocess, sys, time
sys.path.insert(0, sys.argv[4])
from _bench import interleaved
from k3snode import underlay
from k3snode.mesh.wg import keys
from k3snode.config.load import load
derived = [0]
real = keys._public  # the one X25519 derivation every path (underlay, userspace backend) goes through
def counting(k):
    derived[0] += 1
    return real(k)
keys._public = counting
u = underlay.Underlay(load(sys.argv[1], env={}))
first = u.run_once()
assert first.changed
u.run_once()  # the first read of the configured device derives its public key, once per key
def noop():
    r = u.run_once()
    assert not r.changed, r.changes
ifname, rounds = sys.argv[2], int(sys.argv[3])
dump = lambda: subprocess.run(["wg", "show", ifname, "dump"], stdout=subprocess.DEVNULL, check=True)
before = derived[0]
got = interleaved({"pass": noop, "dump": dump}, rounds, clock=time.perf_counter)
print(json.dumps({"pass": got["pass"].__dict__, "dump": got["dump"].__dict__,
                  "derived_per_pass": (derived[0] - before) / (rounds + 1)}))
"""


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
                 os.path.join(REPO, "benchmarks")],
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
        t.row(f"key derivations per no-op pass (after the first), {n} peers",
              Stats(got["derived_per_pass"], got["derived_per_pass"], got["derived_per_pass"], r),
              "", "", "0", got["derived_per_pass"] == 0, unit="")  # fmt: skip
    k = fit_exponent(SIZES, medians)
    t.row(f"fitted exponent of the pass over {', '.join(map(str, SIZES))} peers", None, "", f"{k:.2f}",
          f"≤ {EXPONENT_GOAL}", k <= EXPONENT_GOAL)  # fmt: skip
    t.row("fitted exponent of `wg show dump` (wireguard-go's own growth)", None, "",
          f"{fit_exponent(SIZES, dumps):.2f}")  # fmt: skip


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
    t.print()


if __name__ == "__main__":
    main()
