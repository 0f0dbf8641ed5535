"""What WireGuard costs k3snode: keys in pure Python, reading an interface, a no-op underlay pass.
Baselines are measured in the same run: ``wg pubkey`` and ``wg show IF dump`` (C, one process).

    python benchmarks/wireguard.py [ROUNDS]      # the interface rows need root and wireguard-go
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from k3snode.mesh.wg import keys  # noqa: E402
from k3snode.mesh.wg.userspace import Userspace  # noqa: E402

PEERS = 100


def median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def key_rows(rounds: int) -> list[tuple[str, float, float | None]]:
    priv = keys.generate_private()
    base = None
    if shutil.which("wg"):
        base = median_ms(lambda: subprocess.run(["wg", "pubkey"], input=priv.reveal().encode(),
                                                capture_output=True, check=True), rounds)  # fmt: skip
    return [
        ("X25519 public key (pure Python)", median_ms(lambda: keys.public_key(priv), rounds), base),
        ("`wg pubkey` process (baseline)", base, base) if base else None,
    ]


PASS_SCRIPT = """
import statistics, sys, time
from k3snode import underlay
from k3snode.settings import load
u = underlay.Underlay(load(sys.argv[1]))
u.run_once()
t = []
for _ in range(int(sys.argv[2])):
    s = time.perf_counter(); r = u.run_once(); t.append((time.perf_counter() - s) * 1000)
    assert not r.changed, r.changes
print(statistics.median(t))
"""


def interface_rows(rounds: int) -> list:
    if os.geteuid() != 0 or not shutil.which("wireguard-go") or not shutil.which("wg"):
        return []
    ns, ifname = f"k3snbench{os.getpid()}", f"wgb{os.getpid() % 100000}"
    tmp = tempfile.mkdtemp()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        peers = [keys.public_key(keys.generate_private()) for _ in range(PEERS)]
        cfg = os.path.join(tmp, "c.toml")
        with open(cfg, "w") as f:
            f.write(f'[underlay]\nenabled = true\ninterface = "{ifname}"\naddress = "10.99.0.1/16"\n'
                    f'private_key_file = "{tmp}/k"\n')  # fmt: skip
            for i, pub in enumerate(peers):
                f.write(f'[[underlay.peers]]\npublic_key = "{pub}"\n'
                        f'endpoint = "192.0.2.{i % 250 + 1}:51822"\naddress = "10.99.1.{i}"\n')  # fmt: skip
        env = {**os.environ, "PYTHONPATH": REPO}
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PASS_SCRIPT, cfg,
                              str(rounds)], env=env, capture_output=True, text=True)  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        noop = float(out.stdout)
        u = Userspace(ifname)
        read = median_ms(u.read, rounds)
        dump = median_ms(lambda: subprocess.run(["wg", "show", ifname, "dump"],
                                                capture_output=True, check=True), rounds)  # fmt: skip
        return [
            (f"UAPI read, {PEERS} peers", read, dump),
            (f"`wg show dump`, {PEERS} peers (baseline)", dump, dump),
            (f"no-op underlay pass, {PEERS} peers", noop, dump),
        ]
    finally:
        subprocess.run(["ip", "-n", ns, "link", "del", ifname], check=False)  # wireguard-go exits
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rows = [r for r in key_rows(rounds) + interface_rows(rounds) if r]
    print(f"{'operation':42} {'median ms':>10} {'vs baseline':>12}")
    for name, ms, base in rows:
        ratio = f"{ms / base:.2f}x" if base else "-"
        print(f"{name:42} {ms:10.3f} {ratio:>12}")


if __name__ == "__main__":
    main()
