"""How long k3snode's pure-Python X25519 takes, against ``wg pubkey`` (C, one process per key)
measured in the same run; also one UAPI read of a wireguard-go interface when run as root.

    python benchmarks/wg_keys.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from k3snode.mesh.wg import keys


def median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    priv = keys.generate_private()
    rows = [("pure-Python X25519 public key", median_ms(lambda: keys.public_key(priv), rounds))]
    rows.append(("generate_private + public key", median_ms(
        lambda: keys.public_key(keys.generate_private()), rounds)))  # fmt: skip
    baseline = None
    if shutil.which("wg"):
        baseline = median_ms(
            lambda: subprocess.run(["wg", "pubkey"], input=priv.reveal().encode(),
                                   capture_output=True, check=True), rounds)  # fmt: skip
        rows.append(("baseline: `wg pubkey` process (stdin)", baseline))
    print(f"{'operation':42} {'median ms':>10} {'vs wg pubkey':>13}")
    for name, ms in rows:
        ratio = f"{ms / baseline:.2f}x" if baseline else "-"
        print(f"{name:42} {ms:10.3f} {ratio:>13}")


if __name__ == "__main__":
    main()
