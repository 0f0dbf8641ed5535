"""cloud-init's own answer, when it already ran on this node: a zero-cost hint.

cloud-init writes ``/run/cloud-init/instance-data.json`` (world-readable; the sensitive keys are
redacted into a root-only sibling) and ``/run/cloud-init/cloud-id`` (one line, e.g. ``aws``).
Both name the platform cloud-init found, so k3snode can pick the provider without guessing from
DMI; ``ds.meta_data`` may also carry the public addresses as they were **at boot**. Those are
only a fallback for a metadata service that does not answer now: the service stays the source
of truth for addresses that change.

The file is bounded before it is parsed: at most ``MAX_BYTES`` and ``MAX_DEPTH`` levels of
nesting (a broken or hostile file must not make discovery slow or raise RecursionError).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from k3snode.discovery.providers import from_cloud_init
from k3snode.record import record

DEFAULT_DIR = "/run/cloud-init"
MAX_BYTES = 1 << 20  # an AWS instance-data.json is ~20 KiB, Azure's ~40 KiB
MAX_DEPTH = 32
# ds.meta_data keys that hold a public address, per family (EC2-style trees: aws, aliyun,
# openstack; cloud-init turns '-' into '_' in instance-data.json)
ADDRESS_KEYS = {
    "ipv4": ("public_ipv4", "public-ipv4", "eipv4"),
    "ipv6": ("ipv6", "public_ipv6", "public-ipv6"),
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in "[]{}"))


@record
class Hint:
    """What cloud-init recorded at boot: its cloud's name and the public addresses it saw."""

    cloud: str  # cloud-init's name, e.g. "aws"
    provider: str | None  # k3snode's id, or None when k3snode has no such provider
    source: str  # the file it came from
    ipv4: str | None = None  # public addresses at boot (judged later, like any candidate)
    ipv6: str | None = None

    def get(self, fam: str) -> str | None:
        return self.ipv4 if fam == "ipv4" else self.ipv6


def read(directory: str = DEFAULT_DIR) -> tuple[Hint | None, str]:
    """(hint or None, a note saying why there is none) — file reads only, never the network."""
    path = os.path.join(directory, "instance-data.json")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return _cloud_id(directory)
    except OSError as e:
        return None, f"cloud-init: cannot read {path}: {e.strerror or e}"
    if len(raw) > MAX_BYTES:
        return None, f"cloud-init: {path} is larger than {MAX_BYTES} bytes; not used"
    try:
        text = raw.decode("utf-8")
        if _depth(text) > MAX_DEPTH:
            return None, f"cloud-init: {path} is nested deeper than {MAX_DEPTH}; not used"
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, f"cloud-init: {path} is not JSON; not used"
    v1 = data.get("v1") if isinstance(data, dict) else None
    if not isinstance(v1, dict):
        return None, f"cloud-init: {path} has no v1 section; not used"
    cloud = _name(v1.get("cloud_id")) or _name(v1.get("cloud_name")) or _name(v1.get("platform"))
    if not cloud:
        return None, f"cloud-init: {path} names no cloud"
    md = data.get("ds", {}).get("meta_data") if isinstance(data.get("ds"), dict) else None
    found = {fam: _first(md, keys) for fam, keys in ADDRESS_KEYS.items()}
    return Hint(cloud, _provider(cloud, v1), path, found["ipv4"], found["ipv6"]), ""


def _cloud_id(directory: str) -> tuple[Hint | None, str]:
    path = os.path.join(directory, "cloud-id")
    try:
        with open(path, "rb") as f:
            cloud = _name(f.read(64).decode("utf-8", "replace").strip())
    except OSError:
        return None, ""  # cloud-init did not run (or is not installed): nothing to say
    if not cloud:
        return None, f"cloud-init: {path} is empty"
    return Hint(cloud, from_cloud_init(cloud), path), ""


def _provider(cloud: str, v1: dict) -> str | None:
    """k3snode's provider for cloud-init's names (each provider module's ``CLOUD_INIT``; "ibmcloud"
    is IBM's Classic infrastructure, a config drive rather than VPC's service: left to DMI)."""
    for name in (cloud, _name(v1.get("cloud_name")), _name(v1.get("platform"))):
        found = from_cloud_init(name) if name else None
        if found:  # cloud_id may carry a region variant no provider lists
            return found
    return None


def _name(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    value = value.strip().lower()
    return "" if value in ("", "unknown", "none") or len(value) > 40 else value


def _first(md: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(md, dict):
        return None
    for key in keys:
        value = md.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().split()[0]  # EC2 trees may list several, one a line
    return None


def _depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings (strings and other ASCII removed at C speed)."""
    deepest = depth = 0
    for ch in _STRINGS.sub("", text).translate(_NOT_BRACKETS):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest
