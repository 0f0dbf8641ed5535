"""What the other files K3s reads do to k3snode's keys: where a later file replaces or extends one
of them, where K3s reads another config file than k3snode's, a key K3s would refuse — read from
the view ``effective.py`` builds. ``k3snode apply`` prints it, ``k3snode check`` lists it as
findings and the daemon's health check ``k3s-config`` reports it."""

from __future__ import annotations

import os
from typing import Any

from k3snode import state
from k3snode.config.model import Settings
from k3snode.health.checks import Finding, Observation
from k3snode.k3s import flags, options
from k3snode.k3s.effective import Entry, View, load
from k3snode.record import record


@record
class Report:
    """What ``apply``, ``check`` and health say about the view: errors keep k3snode's keys from
    reaching K3s (or K3s from starting); overrides replace one of them; notes are worth knowing."""

    errors: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and not self.overrides

    def lines(self) -> list[tuple[str, str]]:
        return (
            [("error", m) for m in self.errors]
            + [("warning", m) for m in self.overrides]
            + [("warning", m) for m in self.notes]
        )


def duplicates(view: View) -> list[str]:
    """Keys set twice in one file: not an error to K3s, the later one wins."""
    out = []
    for path in view.files:
        seen: dict[str, Entry] = {}
        for e in view.entries:
            if e.path != path or e.append:
                continue
            if e.key in seen:
                out.append(
                    f"{path}: {e.key} is set twice (lines {seen[e.key].line} and {e.line}); "
                    f"K3s uses line {e.line}"
                )
            seen[e.key] = e
    return out


def report(view: View, own_path: str, managed: list[str] | set[str], role: str) -> Report:
    errors = list(view.errors)
    overrides: list[str] = []
    notes: list[str] = duplicates(view)
    own = os.path.normpath(own_path)
    if not view.reads(own):
        errors.append(
            f"K3s reads {view.source.path} ({view.source.origin}) and its drop-ins, not {own}: "
            "k3snode's keys never reach K3s; point [k3s] config at the file K3s reads"
        )
    entries = list(view.entries)
    final = view.values()
    own_index = {e.key: i for i, e in enumerate(entries) if os.path.normpath(e.path) == own}
    for key in managed:
        if key not in own_index:
            continue
        for e in entries[own_index[key] + 1 :]:
            if e.key != key:
                continue
            if e.append:
                overrides.append(
                    f"{e.where}: {e.written} appends to k3snode's {key} (K3s reads it after "
                    f"{own}); K3s ends up with {_show(final.get(key))}"
                )
            else:
                overrides.append(
                    f"{e.where}: {key} replaces k3snode's value from {own} (K3s reads it "
                    f"later); K3s ends up with {_show(final.get(key))}"
                )
    checked = flags.Keys(role)  # a "did you mean" for the first few unknown keys, then a count
    for e in entries:
        if os.path.normpath(e.path) == own:
            continue  # k3snode's own file: its plan already checks the user's keys there
        problem = checked.problem(e.key, e.value)
        if problem:
            notes.append(f"{e.where}: {e.written} {problem}; K3s may refuse to start")
    if checked.more:
        notes.append(f"{checked.more} in the other files K3s reads; K3s may refuse to start")
    return Report(tuple(errors), tuple(overrides), tuple(notes))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "nothing"
    return repr(value) if isinstance(value, str) else str(value)


def managed_keys(settings: Settings) -> list[str]:
    """The keys k3snode manages in its file: what it would write now and what it wrote last."""
    keys = options.managed_keys(settings)
    try:
        written = state.load(settings.state_file).managed.get(settings.k3s.config, [])
    except Exception:  # a damaged state file is reported elsewhere
        written = []
    return list(dict.fromkeys([*keys, *written]))


def for_settings(settings: Settings, root: str = "/") -> tuple[View, Report]:
    view = load(settings.k3s.config, settings.k3s.unit, root)
    return view, report(view, settings.k3s.config, managed_keys(settings), settings.role)


# --- the three places that report it -----------------------------------------------------------


def preflight(settings: Settings, root: str = "/") -> list[Finding]:
    """``k3snode check``: the effective config's errors, overrides and notes as findings."""
    view, rep = for_settings(settings, root)
    out = [Finding(level, "k3s", msg) for level, msg in rep.lines()]
    if not out:
        out.append(Finding("ok", "k3s", _summary(view)))
    return out


def observe(settings: Settings, root: str = "/") -> list[Observation]:
    """The observer (``health.registry.observers()``) ``k3s-config``: not ok while K3s would not use k3snode's keys as
    written (another file replaces or extends one, K3s reads another config, a file K3s would
    refuse); duplicates and unknown keys elsewhere are facts, not failures."""
    view, rep = for_settings(settings, root)
    facts = {f"note {i + 1}": msg for i, msg in enumerate(rep.notes[:10])}
    facts["files"] = ", ".join(view.files) or "none"
    problems = [*rep.errors, *rep.overrides]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return [Observation("k3s-config", False, problems[0] + more, facts=facts)]
    return [Observation("k3s-config", True, _summary(view), facts=facts)]


def _summary(view: View) -> str:
    n = len(view.files)
    return (
        f"K3s reads {n} config file{'s' if n != 1 else ''} from {view.source.path} "
        f"({view.source.origin}); no other file changes k3snode's keys"
    )
