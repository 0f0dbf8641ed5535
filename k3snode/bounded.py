"""Parsing bytes from outside with bounds on size, nesting and alias expansion.

``json.loads`` and PyYAML are fast but trust their input: a few hundred bytes of YAML aliases
("billion laughs") expand to gigabytes, and a few thousand brackets of JSON or YAML nesting raise
``RecursionError``. Every document k3snode parses from the network (metadata answers) or from a
file it rewrites (K3s's config.yaml) goes through here first:

- ``max_bytes``: the text itself;
- ``max_depth``: how deeply collections nest, counted after aliases are expanded;
- ``max_nodes``: how many nodes the document has once every alias is expanded — an alias costs
  the size of what it names, so a handful of anchors cannot multiply into millions of nodes.

The YAML check walks the parser's event stream (no objects are built), so its cost is linear in
the text: 256 KiB take well under a second. Only then is the document constructed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from k3snode.record import record


class TooComplex(ValueError):
    """The document exceeds a bound; the message says which (one line)."""


@record
class Bounds:
    """Limits on bytes from outside before and while they are parsed."""

    max_bytes: int = 256 * 1024
    max_depth: int = 64
    max_nodes: int = 100_000


METADATA = Bounds()  # a metadata answer: a few KiB in practice


def _yaml():
    import yaml

    return yaml


def check_yaml(text: str, bounds: Bounds = METADATA) -> None:
    """Raise TooComplex when ``text`` exceeds ``bounds``; yaml.YAMLError when it is not YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > bounds.max_bytes:
        raise TooComplex(f"larger than {bounds.max_bytes} bytes")
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    count = 0
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, depth below it)
    stack: list[list[Any]] = []  # [anchor, count at start, depth at start, deepest reached]

    def reached(depth: int) -> None:
        if depth > bounds.max_depth:
            raise TooComplex(f"nested deeper than {bounds.max_depth} levels")
        if stack and depth > stack[-1][3]:
            stack[-1][3] = depth

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            count += 1
            depth = len(stack) + 1
            reached(depth)
            stack.append([event.anchor, count - 1, len(stack), depth])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, start, base, deepest = stack.pop()
            if anchor is not None:
                sizes[anchor] = (count - start, deepest - base)
            if stack and deepest > stack[-1][3]:
                stack[-1][3] = deepest
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            reached(len(stack) + 1)
            if event.anchor is not None:
                sizes[event.anchor] = (1, 1)
        elif isinstance(event, yaml.AliasEvent):
            size, below = sizes.get(event.anchor, (1, 1))
            count += size
            reached(len(stack) + below)
        else:
            continue
        if count > bounds.max_nodes:
            raise TooComplex(f"more than {bounds.max_nodes} nodes once aliases are expanded")


def load_yaml(text: str, bounds: Bounds = METADATA) -> Any:
    """``yaml.safe_load`` after ``check_yaml``. Raises TooComplex or yaml.YAMLError."""
    check_yaml(text, bounds)
    yaml = _yaml()
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def check_json(data: bytes | str, bounds: Bounds = METADATA) -> None:
    """Raise TooComplex when the JSON text is too large or nests too deeply (linear scan)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > bounds.max_bytes:
        raise TooComplex(f"larger than {bounds.max_bytes} bytes")
    depth = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", raw)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > bounds.max_depth:
                raise TooComplex(f"nested deeper than {bounds.max_depth} levels")
        else:
            depth -= 1


def load_json(data: bytes | str, bounds: Bounds = METADATA) -> Any:
    """``json.loads`` after ``check_json``. Raises TooComplex or ValueError."""
    check_json(data, bounds)
    try:
        return json.loads(data)
    except RecursionError:  # pragma: no cover - check_json keeps the depth far below the limit
        raise TooComplex(f"nested deeper than {bounds.max_depth} levels") from None


def one_line(text: str, limit: int = 300) -> str:
    """Text from the network made fit for a log line, the status file and ``/healthz``: control
    and other unprintable characters become spaces, runs of space collapse, at most ``limit``."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
