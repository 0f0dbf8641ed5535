"""Merge k3snode's keys into K3s's config.yaml (or a drop-in) without losing anything of the user's.

The file is edited as text, not re-dumped: the top-level entries k3snode manages (now or last time)
are cut out line by line, every other line — the user's keys, comments, blank lines — stays as it
was, and k3snode's keys are appended as one block under a marker comment. The result is parsed
again and must equal the intended mapping; when the text cannot be edited that way (a flow-style
``{…}`` document, say) the whole mapping is dumped instead.

Unchanged content is not written at all, so the file's mtime says when K3s's view really changed.

After a write k3snode keeps a ``Settled`` stamp (in its state file): the SHA-256 of the bytes it
left and of what they were planned from. A plan from the same inputs over the same bytes is the
same plan — "unchanged" — so on a reboot with the same addresses the file is neither parsed nor
rewritten, and PyYAML (≈ 9 ms of imports; its reader compiles a Unicode regular expression) is not
needed before ``READY=1``. Any other byte in the file, another address, role or k3snode version
misses the stamp and takes the full path.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from k3snode import __version__, bounded, fileio
from k3snode.errors import UserError
from k3snode.k3s import flags, yamlv2
from k3snode.record import field, record

MARKER = "# Managed by k3snode: the keys below are rewritten when the node's addresses change."


@record
class Settled:
    """The file as k3snode last left it: digests of its bytes and of the plan's inputs, and the
    warnings that plan gave (said again on a stamped plan)."""

    text: str
    inputs: str
    warnings: tuple[str, ...] = ()

    def holds(
        self, raw: str | None, managed: dict[str, Any], previous: set[str], role: str
    ) -> bool:
        return (
            raw is not None
            and self.text == digest(raw)
            and self.inputs == inputs_digest(managed, previous, role)
        )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inputs_digest(managed: dict[str, Any], previous: set[str], role: str) -> str:
    """What a plan depends on besides the file: k3snode's keys and values, the keys it wrote last
    time, the role (which user keys are valid) and k3snode's version (how it renders)."""
    data = [__version__, managed, sorted(previous), role]
    return digest(json.dumps(data, sort_keys=True, default=str))


def stamp(p: Plan, managed: dict[str, Any], role: str) -> Settled:
    """The stamp for a plan of ``managed`` just applied: the next plan will find these keys as
    the ones k3snode wrote last time (``previous``)."""
    return Settled(digest(p.new_text), inputs_digest(managed, set(managed), role), p.warnings)


class ConfigFileError(UserError):
    """The existing file cannot be merged safely (not YAML, not a mapping, unreadable)."""


@record
class Plan:
    """K3s's config file before and after k3snode's change, and which keys change."""

    path: str
    old_text: str | None  # None: the file does not exist
    new_text: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text


def _yaml():
    import yaml

    return yaml


def _loader():
    return yamlv2.loader()  # read as K3s's yaml.v2 reads: `y` is true, `0o17` is 15


# K3s's config is a few dozen keys; these bounds leave room for a thousand-line file and stop
# an alias bomb before it is expanded (the merge parses the file several times per pass).
BOUNDS = bounded.Bounds(max_bytes=1024 * 1024, max_depth=32, max_nodes=20_000)


def _check_bounds(path: str, text: str) -> None:
    """Refuse a file too large, too deep or with too many aliased nodes, in one line."""
    yaml = _yaml()
    try:
        bounded.check_yaml(text, BOUNDS)
    except bounded.TooComplex as e:
        raise ConfigFileError(f"{path}: refused: {e}; file left untouched") from None
    except yaml.YAMLError:
        pass  # _parse says where and what


def _parse(path: str, text: str) -> dict[str, Any]:
    yaml = _yaml()
    _check_bounds(path, text)
    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigFileError(
            f"{path}: not valid YAML{where}: {problem}; file left untouched"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{path}: must be a YAML mapping of K3s options (got a "
            f"{type(data).__name__}); file left untouched"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigFileError(f"{path}: key {bad[0]!r} is not a string; file left untouched")
    return data


def _entry_spans(text: str) -> list[tuple[str, int, int]] | None:
    """``(key, first_line, end_line_exclusive)`` for each top-level entry, or None when the
    document is not a block mapping that can be edited line by line."""
    yaml = _yaml()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        return None
    lines = text.splitlines()
    spans = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.start_mark.column != 0:
            return None
        start = key_node.start_mark.line
        end_mark = value_node.end_mark
        end = end_mark.line + (1 if end_mark.column > 0 else 0)
        end = max(end, start + 1)
        # Comments and blank lines after a value belong to whatever follows.
        while end - 1 > start and _is_filler(lines[end - 1] if end - 1 < len(lines) else ""):
            end -= 1
        spans.append((key_node.value, start, end))
    return spans


def _is_filler(line: str) -> bool:
    s = line.strip()
    return s == "" or s.startswith("#")


def _dump(mapping: dict[str, Any]) -> str:
    if not mapping:
        return ""
    return _yaml().dump(
        mapping,
        Dumper=yamlv2.dumper(),  # strings yaml.v2 would read as bool/number/null are quoted
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )


def merge_text(
    path: str, old_text: str | None, managed: dict[str, Any], previously_managed: set[str]
) -> tuple[str, dict[str, Any]]:
    """New file text, and the user's keys that were kept. Raises ConfigFileError."""
    old_text = old_text or ""
    current = _parse(path, old_text)
    drop = set(managed) | (previously_managed & set(current))
    kept = {k: v for k, v in current.items() if k not in drop}
    intended = {**kept, **managed}
    spans = _entry_spans(old_text)
    if spans is not None:
        lines = old_text.splitlines()
        cut = set()
        for key, start, end in spans:
            if key in drop:
                cut.update(range(start, end))
        body = [line for i, line in enumerate(lines) if i not in cut and line != MARKER]
        while body and body[-1].strip() == "":
            body.pop()
        block = _dump(managed)
        parts = []
        if body:
            parts.append("\n".join(body) + "\n")
        if block:
            if body:
                parts.append("\n")
            parts.append(MARKER + "\n" + block)
        text = "".join(parts)
        if _reparses_to(path, text, intended):
            return text, kept
    # Not editable line by line: dump the whole mapping (comments are lost, content is not).
    block = _dump(managed)
    text = _dump(kept) + (("\n" if kept else "") + MARKER + "\n" + block if block else "")
    return text, kept


def _reparses_to(path: str, text: str, intended: dict[str, Any]) -> bool:
    """The line-edited text means ``intended``. False also when it is no longer valid YAML: a
    ``...`` end marker before the new block, or an alias to an anchor on a key that was cut."""
    try:
        return _parse(path, text) == intended
    except ConfigFileError:
        return False


def _line_ends_like(old_text: str | None, text: str) -> str:
    """``text`` with CRLF line ends when the existing file used them."""
    if old_text and "\r\n" in old_text and "\r\n" not in text:
        return text.replace("\n", "\r\n")
    return text


def plan(
    path: str,
    managed: dict[str, Any],
    previously_managed: set[str],
    role: str,
    known: Settled | None = None,
) -> Plan:
    """What writing ``managed`` into ``path`` would do. Reads the file; writes nothing. With the
    stamp of the last write (``known``) holding for these bytes and inputs: nothing to do."""
    check_not_symlink(path)
    raw = _read(path)
    if known is not None and known.holds(raw, managed, previously_managed, role):
        return Plan(path, raw, raw, warnings=known.warnings)
    new_text, kept = merge_text(path, raw, managed, previously_managed)
    new_text = _line_ends_like(raw, new_text)
    old = _parse(path, raw) if raw is not None else {}
    added = tuple(k for k in managed if k not in old)
    modified = tuple(k for k in managed if k in old and old[k] != managed[k])
    removed = tuple(k for k in old if k not in managed and k not in kept)
    warnings = []
    checked = flags.Keys(role)  # a "did you mean" for the first few unknown keys, then a count
    for key in kept:
        # "node-label+" appends to node-label (K3s's parser.go): the flag is the name without "+"
        problem = checked.problem(key[:-1] if key.endswith("+") else key, kept[key])
        if problem:
            warnings.append(_short(f"{path}: your key {key!r} {problem}; K3s may refuse to start"))
    if checked.more:
        warnings.append(f"{path}: {checked.more}; K3s may refuse to start")
    return Plan(path, raw, new_text, added, removed, modified, tuple(warnings))


def unchanged_since(path: str, known: Settled | None) -> bool:
    """The file holds exactly the bytes of the stamp (so it parsed when k3snode wrote it)."""
    if known is None:
        return False
    check_not_symlink(path)
    raw = _read(path)
    return raw is not None and digest(raw) == known.text


def apply(p: Plan) -> fileio.WriteResult:
    """Write the planned text atomically (0600); a no-op when nothing changed."""
    return fileio.atomic_write(p.path, p.new_text.encode("utf-8"), mode=0o600)


def _short(line: str, limit: int = 300) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _read(path: str) -> str | None:
    try:
        raw = fileio.read_bytes(path)
    except IsADirectoryError:
        raise ConfigFileError(f"{path}: is a directory; file left untouched") from None
    except PermissionError:
        raise ConfigFileError(f"{path}: cannot read (permission denied)") from None
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text; file left untouched") from None


def marker_keys(path: str) -> list[str]:
    """The top-level keys below k3snode's marker line: what k3snode wrote, when its state is lost."""
    try:
        raw = _read(path)
    except ConfigFileError:
        return []
    lines = (raw or "").splitlines()
    if MARKER not in lines:
        return []
    at = lines.index(MARKER)
    try:
        _check_bounds(path, raw or "")
        spans = _entry_spans(raw or "")
    except (ConfigFileError, _yaml().YAMLError):
        return []
    return [key for key, start, _ in spans or [] if start > at]


def is_dropin(path: str) -> bool:
    return os.path.basename(os.path.dirname(path)).endswith(".yaml.d")


def check_path(path: str) -> str | None:
    """Why ``path`` is not a file K3s reads, or None."""
    base = os.path.basename(path)
    if is_dropin(path) and not base.lower().endswith((".yaml", ".yml")):
        return "K3s reads only *.yaml and *.yml files in config.yaml.d/"
    if not base.lower().endswith((".yaml", ".yml")):
        return (
            "must be K3s's YAML config file (config.yaml) or a config.yaml.d/NN-name.yaml "
            "drop-in; k3snode writes nothing else"
        )
    return None


def check_not_symlink(path: str) -> None:
    """k3snode never writes through a symbolic link (nor replaces one): it says so instead.
    Replacing the link would silently break the user's setup, writing its target would let
    whoever can change the link choose what root overwrites."""
    if os.path.islink(path):
        target = os.readlink(path)
        raise ConfigFileError(
            f"{path}: is a symbolic link (to {target}); k3snode does not write through links: "
            "set [k3s] config to the real file; file left untouched"
        )
