#!/usr/bin/env python3
"""What reading Tailscale costs a daemon pass: ``json.loads`` + ``parse_status`` of a
``tailscale status --json`` text for tailnets of 100, 1000 and 5000 peers, against ``json.loads``
of the same text alone (the real baseline: the least any reader has to do), interleaved in one
run, in CPU time; plus judging the parsed status (``mesh/tailscale/health.judge``). Goal: parse ≤ 3× json.loads.

    python benchmarks/tailscale_status.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from _bench import Table, interleaved  # noqa: E402

from k3snode.mesh.tailscale import health, status  # noqa: E402

SIZES = (100, 1000, 5000)
GOAL = 3.0


def status_doc(n: int) -> str:
    """A status as tailscaled writes it: every peer with both addresses, times with
    nanoseconds, a third offline (LastSeen set), the rest online (LastSeen zero)."""
    peers = {}
    for i in range(n):
        key = f"nodekey:{i:064x}"
        online = i % 3 != 0
        peers[key] = {
            "ID": f"n{i}CNTRL", "PublicKey": key, "HostName": f"node-{i}",
            "DNSName": f"node-{i}.tail1234.ts.net.", "OS": "linux",
            "TailscaleIPs": [f"100.64.{i // 250}.{i % 250 + 1}", f"fd7a:115c:a1e0::{i:x}"],
            "CurAddr": f"198.51.100.{i % 250}:41641", "Relay": "fra", "RxBytes": i, "TxBytes": i,
            "LastSeen": "0001-01-01T00:00:00Z" if online else f"2026-11-26T15:{i % 60:02}:00Z",
            "LastHandshake": f"2026-11-26T16:59:{i % 60:02}.{i:09}Z",
            "Online": online,
        }  # fmt: skip
    return json.dumps({
        "BackendState": "Running", "TailscaleIPs": ["100.64.0.5", "fd7a:115c:a1e0::5"],
        "Self": {"HostName": "me", "Online": True, "KeyExpiry": "2027-01-01T00:00:00Z"},
        "Health": [], "Peer": peers,
    }, indent=2)  # fmt: skip


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    t = Table(f"Tailscale status: CPU ms, medians of {rounds} interleaved rounds, "
              f"{sys.version.split()[0]}")  # fmt: skip
    now = time.time()
    for n in SIZES:
        doc = status_doc(n)
        st = status.parse_status(json.loads(doc))
        assert len(st.peers) == n
        r = interleaved({
            "loads": lambda doc=doc: json.loads(doc),
            "parse": lambda doc=doc: status.parse_status(json.loads(doc)),
            "judge": lambda st=st: health.judge(st, now),
        }, rounds if n < 5000 else max(5, rounds // 3))  # fmt: skip
        base = r["loads"].median
        ratio = r["parse"].median / base
        t.row(f"json.loads, {n} peers (baseline)", r["loads"])
        t.row(f"json.loads + parse_status, {n} peers", r["parse"], "json.loads",
              f"{ratio:.2f}×", f"≤ {GOAL:g}×", ratio <= GOAL)  # fmt: skip
        t.row(f"judge (health of the parsed status), {n} peers", r["judge"], "json.loads",
              f"{r['judge'].median / base:.2f}×")  # fmt: skip
    t.print()


if __name__ == "__main__":
    main()
