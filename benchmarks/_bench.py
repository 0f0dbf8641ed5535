"""Shared by the benchmarks: interleaved timing, median/min/max, goal rows printed with ✓/✗.

Every row names what it measured, its median, min and max, the baseline measured in the same
interleaved run, the ratio (or the difference) to it, and the goal with a verdict.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, xs: Sequence[float]) -> Stats:
        return cls(statistics.median(xs), min(xs), max(xs), len(xs))


def children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.process_time,
) -> dict[str, Stats]:
    """Time every callable ``rounds`` times, round-robin (load from elsewhere on the machine
    falls on every row alike), after ``warmup`` untimed calls each. ``clock``: this process's
    CPU time by default (robust on a shared machine), ``children_cpu`` for commands,
    ``time.perf_counter`` for wall time."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = clock()
            fn()
            times[k].append(clock() - t)
    return {k: Stats.of(v) for k, v in times.items()}


def run(cmd: list[str], env: dict[str, str] | None = None) -> Callable[[], object]:
    """A callable that runs ``cmd`` with output discarded."""
    return lambda: subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.1f}"


class Table:
    """Rows: what, median/min/max (seconds, printed in ms unless ``unit`` says), baseline name,
    comparison text, goal text, verdict."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, ...]] = []

    def row(self, what: str, s: Stats | None, baseline: str = "", compare: str = "",
            goal: str = "", ok: bool | None = None, unit: str = "ms") -> None:  # fmt: skip
        if s is None:
            mmm = "-"
        elif unit == "ms":
            mmm = f"{s.median * 1000:.1f} ({s.min * 1000:.1f}–{s.max * 1000:.1f})"
        elif unit == "s":
            mmm = f"{s.median:.2f} s ({s.min:.2f}–{s.max:.2f})"
        else:
            mmm = f"{s.median:.4g} ({s.min:.4g}–{s.max:.4g}) {unit}"
        verdict = "" if ok is None else ("✓" if ok else "✗")
        self.rows.append((what, mmm, baseline, compare, goal, verdict))

    def print(self) -> None:
        head = ("what", "median (min–max)", "baseline", "vs baseline", "goal", "")
        rows = [head, *self.rows]
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        print(f"\n{self.title}")
        print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |")
        print("|" + "|".join("-" * (x + 2) for x in w) + "|")
        for r in self.rows:
            print("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")


def fit_exponent(ns: Sequence[float], ts: Sequence[float]) -> float:
    """Least-squares slope of log t over log n: 1 is linear, 2 quadratic."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(t) for t in ts]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def repo() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_cpu(pid: int) -> float:
    """CPU seconds of all live threads (``schedstat``: nanoseconds, not 10 ms ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError, ValueError),
            open(f"/proc/{pid}/task/{tid}/schedstat") as f,
        ):
            total += int(f.read().split()[0])
    return total / 1e9
