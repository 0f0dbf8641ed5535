#!/usr/bin/env python3
"""What Tailscale costs a daemon pass: parsing ``tailscale status --json`` and judging it, for
tailnets of 10 to 2000 peers, against ``json.loads`` alone (the baseline, same run); and one
``ensure_up`` on a node already Running (stub ``tailscale`` on PATH) against one bare
``tailscale status --json`` process.

    python benchmarks/tailscale_status.py        # prints a table of medians
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from k3snode import settings as settings_mod  # noqa: E402
from k3snode.mesh import tailscale, tailscale_health  # noqa: E402


def status_doc(n: int) -> str:
    peers = {}
    for i in range(n):
        key = f"nodekey:{i:064x}"
        peers[key] = {
            "ID": f"n{i}CNTRL", "PublicKey": key, "HostName": f"node-{i}",
            "DNSName": f"node-{i}.tail1234.ts.net.", "OS": "linux",
            "TailscaleIPs": [f"100.64.{i // 250}.{i % 250 + 1}", f"fd7a:115c:a1e0::{i:x}"],
            "CurAddr": f"198.51.100.{i % 250}:41641", "Relay": "fra", "RxBytes": i, "TxBytes": i,
            "LastSeen": "2026-11-26T15:00:00Z", "LastHandshake": "2026-11-26T16:59:30.5Z",
            "Online": i % 3 != 0,
        }  # fmt: skip
    return json.dumps({
        "BackendState": "Running", "TailscaleIPs": ["100.64.0.5", "fd7a:115c:a1e0::5"],
        "Self": {"HostName": "me", "Online": True, "KeyExpiry": "2027-01-01T00:00:00Z"},
        "Health": [], "Peer": peers,
    })  # fmt: skip


def median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    rows = []
    now = time.time()
    for n in (10, 100, 500, 2000):
        doc = status_doc(n)
        repeat = 200 if n <= 100 else 30
        base = median(lambda doc=doc: json.loads(doc), repeat)
        parse = median(lambda doc=doc: tailscale.parse_status(json.loads(doc)), repeat)
        st = tailscale.parse_status(json.loads(doc))
        judge = median(lambda st=st: tailscale_health.judge(st, now), repeat)
        rows.append((f"{n} peers: json.loads (baseline)", base, 1.0))
        rows.append((f"{n} peers: parse_status", parse, parse / base))
        rows.append((f"{n} peers: parse_status + judge", parse + judge, (parse + judge) / base))

    from tailscale_stub import TailscaleStub, write_settings

    with tempfile.TemporaryDirectory() as d:
        from pathlib import Path

        root = Path(d)
        stub = TailscaleStub.create(root)
        stub.control(daemon="running", backend_state="Running")
        env = stub.env()
        os.environ.update(PATH=env["PATH"], TAILSCALE_STUB_DIR=env["TAILSCALE_STUB_DIR"])
        s = settings_mod.load(str(write_settings(root)), env={})
        bare = median(lambda: subprocess.run(["tailscale", "status", "--json"],
                                             capture_output=True, check=True), 15)  # fmt: skip
        ensure = median(lambda: tailscale.ensure_up(s), 15)
        rows.append(("stub `tailscale status --json` process (baseline)", bare, 1.0))
        rows.append(("ensure_up, already Running (stub)", ensure, ensure / bare))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'median':>10}  {'ratio':>6}")
    for name, t, ratio in rows:
        print(f"{name:<{width}}  {t * 1000:>8.3f}ms  {ratio:>6.2f}")


if __name__ == "__main__":
    main()
