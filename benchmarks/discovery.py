#!/usr/bin/env python3
"""Discovery benchmark: how long k3snode holds a booting node back, on a cloud and on bare metal.

Measured in one run, medians of N runs each (wall time of a whole process):

- ``curl pair``: ``curl -X PUT …/latest/api/token`` then ``curl -H token …/public-ipv4`` — the
  minimal IMDSv2 exchange a shell script does (the baseline, ratio 1.00);
- ``python -c pass``: the interpreter alone;
- ``import (aws path)``: the interpreter importing exactly the k3snode modules that
  ``k3snode detect`` imports on AWS (collected from a real run), and nothing else;
- ``k3snode detect (fake AWS)``: the real command against the fake IMDS (tests/fakes/imds.py, a
  separate process on loopback) with ``--metadata-endpoint`` and ``--dmi-dir``;
- ``import (bare-metal path)`` / ``k3snode detect (bare metal)``: the same with real hardware's DMI:
  no metadata service is contacted; the interface is read over netlink (pyroute2);
- ``discover()`` in-process on both paths, as the daemon calls it (no interpreter start).

"over import" is the median of (this run − the import run just before it, same round): the work
discovery itself adds, robust against load that changes during the benchmark.
Aim: < 50 ms on a cloud, < 20 ms on bare metal.

    python benchmarks/discovery.py [-n 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, REPO)

from fakes import dmi_dir  # noqa: E402


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("K3S_", "K3SNODE_"))}
    e["PYTHONPATH"] = REPO
    e["K3SNODE_CONFIG"] = ""
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as an installed package has
    return e


def run_once(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - t


def timed_all(cmds: dict[str, list[str]], n: int) -> dict[str, list[float]]:
    """``n`` timings of each command, run round-robin (so load from other processes on the
    machine falls on every row alike), after one warm-up run each (writes .pyc files)."""
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd in cmds.values():
        run_once(cmd)
    for _ in range(n):
        for name, cmd in cmds.items():
            samples[name].append(run_once(cmd))
    return samples


def modules_of(args: list[str]) -> list[str]:
    """Every module a real ``k3snode ARGS`` run imports beyond what the bare interpreter has
    loaded (k3snode's own, the stdlib ones they pull in, pyroute2 when interfaces are read)."""
    code = (
        "import sys, io, contextlib\n"
        "before = set(sys.modules)\n"
        "from k3snode.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(sys.argv[1:])\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env(), capture_output=True, text=True
    )
    return out.stdout.split()


def import_cmd(modules: list[str]) -> list[str]:
    """Import the k3snode modules the path imported, and the heavy libraries it imports lazily
    inside functions (pyroute2's IPRoute, yaml) the way k3snode imports them."""
    own = [m for m in modules if m.startswith("k3snode")]
    code = "import " + ", ".join(own)
    if any(m.startswith("pyroute2") for m in modules):
        code += "\nfrom pyroute2 import IPRoute"
    if "yaml" in modules:
        code += "\nimport yaml"
    return [sys.executable, "-c", code]


def in_process(args: list[str], n: int) -> float:
    """Median Discovery.duration of discover() called in one process (after a warm-up)."""
    code = (
        "import sys, json, statistics\n"
        "from k3snode.config.load import load\n"
        "from k3snode.discovery import discover\n"
        "kv = dict(a.split('=', 1) for a in sys.argv[2:])\n"
        "s = load(None, env={}, overrides={('discovery', k): v for k, v in kv.items()})\n"
        "discover(s)\n"
        "d = [discover(s).duration for _ in range(int(sys.argv[1]))]\n"
        "print(statistics.median(d))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(n), *args], env=env(), capture_output=True, text=True
    )
    return float(out.stdout.strip())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=15, help="runs per row (default 15)")
    a = p.parse_args()
    from helpers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fake = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tests", "fakes", "imds.py"), "--provider", "aws",
         "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        fake.stdout.readline()
        aws = ["detect", "--json", "--dmi-dir", dmi_dir("aws"), "--metadata-endpoint", url]
        bare = ["detect", "--json", "--dmi-dir", dmi_dir("baremetal")]
        check = subprocess.run(
            [sys.executable, "-m", "k3snode", *aws], env=env(), capture_output=True, text=True
        )
        assert json.loads(check.stdout)["source"] == "metadata", check.stdout + check.stderr
        aws_mods = modules_of(aws)
        bare_mods = modules_of(bare)
        cmds: dict[str, list[str]] = {}
        curl = shutil.which("curl")
        if curl:
            pair = (
                f"T=$({curl} -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                f'{url}/latest/api/token) && {curl} -s -H "X-aws-ec2-metadata-token: $T" '
                f"{url}/latest/meta-data/public-ipv4"
            )
            cmds["curl pair (IMDSv2 token + GET)"] = ["sh", "-c", pair]
        py = sys.executable
        cmds["python -c pass"] = [py, "-c", "pass"]
        cmds["import (aws path)"] = import_cmd(aws_mods)
        cmds["k3snode detect (fake AWS)"] = [py, "-m", "k3snode", *aws]
        cmds["import (bare-metal path)"] = import_cmd(bare_mods)
        cmds["k3snode detect (bare metal)"] = [py, "-m", "k3snode", *bare]
        samples = timed_all(cmds, a.n)
        imports = {"k3snode detect (fake AWS)": "import (aws path)",
                   "k3snode detect (bare metal)": "import (bare-metal path)"}  # fmt: skip
        rows: list[tuple[str, float, float | None]] = []  # (name, median, median over import)
        spread: dict[str, tuple[float, float]] = {}
        for name, times in samples.items():
            over = None
            if name in imports:  # paired: each run minus the import run just before it
                over = statistics.median(t - i for t, i in zip(times, samples[imports[name]]))
            rows.append((name, statistics.median(times), over))
            spread[name] = (min(times), max(times))
        rows.append(("discover() in-process, fake AWS",
                     in_process([f"dmi_dir={dmi_dir('aws')}", f"metadata_endpoint={url}"], a.n), None))  # fmt: skip
        rows.append(("discover() in-process, bare metal",
                     in_process([f"dmi_dir={dmi_dir('baremetal')}"], a.n), None))  # fmt: skip
    finally:
        fake.terminate()
        fake.wait()
    base = rows[0][1]
    print(
        f"discovery benchmark: medians of {a.n} runs, {sys.version.split()[0]}, baseline = first row"
    )
    print(f"{'what':<36} {'median ms':>10} {'min–max ms':>14} {'ratio':>7} {'over import ms':>15}")
    for name, t, over in rows:
        shown = f"{over * 1000:.1f}" if over is not None else ""
        lo, hi = spread.get(name, (t, t))
        mm = f"{lo * 1000:.1f}–{hi * 1000:.1f}"
        print(f"{name:<36} {t * 1000:>10.1f} {mm:>14} {t / base:>7.2f} {shown:>15}")

    def count(mods: list[str], prefix: str) -> int:
        return sum(m == prefix or m.startswith(prefix + ".") for m in mods)

    for path, mods in (("aws", aws_mods), ("bare-metal", bare_mods)):
        print(f"{path} path imports {len(mods)} modules: {count(mods, 'k3snode')} of k3snode, "
              f"{count(mods, 'pyroute2')} of pyroute2, {count(mods, 'http')} of http, "
              f"{count(mods, 'yaml')} of yaml")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
