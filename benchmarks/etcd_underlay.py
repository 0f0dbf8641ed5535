"""Embedded etcd across three clouds over the k3snode underlay: per fault, the time from the fault
to all members healthy (median of RUNS), leader changes, and the longest time the writer got no
acknowledgement (the fault always hits the leader: leadership is moved to the faulted server
first) — against the same etcd cluster on a plain bridge (no NAT, no WireGuard) with
the same fault where it applies. Goals (issue 16) printed with ✓/✗.

    python benchmarks/etcd_underlay.py [RUNS] [--profile recommended|defaults|lab] [--quick]

Needs root, wireguard-go, etcd (Debian etcd-server/etcd-client) and nftables. The lab is
tests/cloudlab.py; etcd runs with K3s's heartbeat (500 ms) and election timeout (5000 ms).
``--quick``: a 10 s partition instead of 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, REPO)

from cloudlab import Lab, Outcome, have_lab_tools, measure  # noqa: E402

# [underlay] keepalive (s), resolve_interval (s), [health] grace (s), [daemon] overrides; the
# daemon passes the underlay every min(grace / 2, 5 s). "defaults": k3snode's own throughout.
PROFILES = {
    "defaults": dict(keepalive=25, resolve_interval=60.0, grace=120.0, daemon={}),
    "recommended": dict(keepalive=5, resolve_interval=60.0, grace=120.0, daemon={}),
    "lab-fast": dict(keepalive=1, resolve_interval=2.0, grace=4.0, daemon={"debounce": 0.2}),
}


def faults(lab: Lab, partition_s: float):
    """(name, inject, heal, applies on the bridge) — each leaves the cluster as it found it."""
    s1, s2 = lab.clouds[0], lab.clouds[1]
    n = {"i": 0}

    def reassociate():
        n["i"] += 1
        lab.reassociate(s1, f"3.120.45.{100 + n['i']}")

    def double():
        n["i"] += 1
        lab.reassociate(s1, f"3.120.45.{100 + n['i']}", dns=False)
        lab.reassociate(s2, f"34.89.12.{100 + n['i']}", dns=False)
        lab.write_hosts()

    def restart_upgrade():
        lab.stop_k3snode(s1)
        time.sleep(2)
        lab.start_k3snode(s1)
        time.sleep(3)
        lab.upgrade_k3snode(s1)
        time.sleep(3)

    return [
        ("(a) address re-associated", reassociate, None, False),
        ("(b) two addresses, DNS", double, None, False),
        ("(c) k3snode restart+upgrade", restart_upgrade, None, False),
        ("(d) wireguard-go killed", lambda: lab.kill_wireguard_go(s1), None, False),
        (
            f"(e) partition {partition_s:.0f} s",
            lambda: (lab.partition(s1), time.sleep(partition_s)),
            lambda: lab.heal(s1),
            True,
        ),
        ("(f) reboot", lambda: lab.crash(s1), lambda: lab.boot(s1), True),
    ]


def run(profile: dict, underlay: bool, runs: int, partition_s: float) -> dict[str, list[Outcome]]:
    out: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory() as d, Lab(Path(d), underlay=underlay, **profile) as lab:
        for name, inject, heal, on_bridge in faults(lab, partition_s):
            if not underlay and not on_bridge:
                continue
            for _ in range(runs):
                lead = lab.clouds[0]  # the fault hits the leader: the worst case
                out.setdefault(name, []).append(measure(lab, name, inject, heal, leader=lead))
                print(f"  {'underlay' if underlay else 'bridge':8} {out[name][-1]}", flush=True)
    return out


GOALS = {  # fault -> (recovery bound in s or None, leader changes allowed or None)
    "(a) address re-associated": (10.0, None),
    "(b) two addresses, DNS": (30.0, None),
    "(c) k3snode restart+upgrade": (None, 0),
    "(d) wireguard-go killed": (10.0, None),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="?", type=int, default=3)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="defaults")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    missing = have_lab_tools()
    if os.geteuid() != 0 or missing:
        print(f"needs root and {missing or 'network namespaces'}")
        return 1
    prof = PROFILES[a.profile]
    partition_s = 10.0 if a.quick else 30.0
    print(f"profile {a.profile}: {prof}; etcd heartbeat 500 ms, election 5000 ms; runs {a.runs}")
    t0 = time.monotonic()
    ul = run(prof, True, a.runs, partition_s)
    br = run(prof, False, a.runs, partition_s)
    med = statistics.median
    print()
    print(f"{'fault':30} {'recovery s':>10} {'bridge s':>9} {'leader chg':>10} "
          f"{'no-ack s':>9} {'bridge':>7} {'lost':>5}  goal")  # fmt: skip
    lost = 0
    for name, outs in ul.items():
        rec = med(o.recovery for o in outs)
        lc = max(o.leader_changes for o in outs)
        una = med(o.unavailable for o in outs)
        b = br.get(name)
        brec = f"{med(o.recovery for o in b):9.1f}" if b else f"{'n/a':>9}"
        buna = f"{med(o.unavailable for o in b):7.1f}" if b else f"{'n/a':>7}"
        bound, leaders = GOALS.get(name, (None, None))
        goal = []
        if bound is not None:
            worst = max(o.recovery for o in outs)
            goal.append(f"{'✓' if worst <= bound else '✗'} ≤ {bound:.0f} s (worst {worst:.1f})")
        if leaders is not None:
            goal.append(f"{'✓' if lc <= leaders else '✗'} no election")
        print(f"{name:30} {rec:10.1f} {brec} {lc:10d} {una:9.1f} {buna}     0  {'; '.join(goal)}")
    print(f"\n{'✓' if lost == 0 else '✗'} 0 acknowledged writes lost "
          f"({sum(o.acked for v in ul.values() for o in v)} checked on every member)")  # fmt: skip
    print(
        f"(whole run {time.monotonic() - t0:.0f} s; 'lost' is checked: a lost write fails the run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
