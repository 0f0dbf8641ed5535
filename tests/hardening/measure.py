"""Run a command as a real process and measure it: exit status, peak RSS, seconds, output.

The command gets at most 1 GiB of address space: the unbounded parsers this guards against
needed more, and would otherwise take the shared test machine with them.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from helpers import REPO, clean_env

_RUNNER = (
    "import resource, subprocess, sys, time\n"
    "lim = lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    "t = time.monotonic()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True, preexec_fn=lim)\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(p.returncode, rss, round(time.monotonic() - t, 2))\n"
    "sys.stdout.write(p.stdout + p.stderr)\n"
)


@dataclass(frozen=True)
class Measured:
    returncode: int
    rss_kib: int
    seconds: float
    output: str  # stdout then stderr


def measure(cmd: list[str], netns: str | None = None, timeout: float = 300) -> Measured:
    full = [sys.executable, "-c", _RUNNER, *cmd]
    if netns:
        full = ["ip", "netns", "exec", netns, *full]
    out = subprocess.run(
        full, capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=timeout
    )
    first, _, rest = out.stdout.partition("\n")
    rc, rss, seconds = first.split()
    return Measured(int(rc), int(rss), float(seconds), rest)


def k3snode(*args: str) -> list[str]:
    return [sys.executable, "-m", "k3snode", *args]
