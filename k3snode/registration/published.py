"""What this server published last, in ``<state_dir>/registration.json`` (0600).

The next update removes exactly these addresses — never another server's — so the file is the
only thing that must survive a restart of k3snode. ``prepare-image`` and ``registration
withdraw`` remove it after withdrawing what it names.
"""

from __future__ import annotations

import contextlib
import json
import os

from k3snode import fileio
from k3snode.record import record

FILENAME = "registration.json"


@record
class Record:
    """What was last published for the registration name."""

    name: str
    addresses: tuple[str, ...]
    time: float  # unix time of the update that published them


def path(state_dir: str) -> str:
    return os.path.join(state_dir, FILENAME)


def load(file: str) -> Record | None:
    """The record, or None when there is none (or it is damaged: then nothing is removed)."""
    raw = fileio.read_bytes(file)
    if raw is None:
        return None
    try:
        d = json.loads(raw.decode("utf-8"))
        return Record(str(d["name"]), tuple(str(a) for a in d["addresses"]), float(d["time"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def save(file: str, rec: Record) -> None:
    data = {"name": rec.name, "addresses": list(rec.addresses), "time": rec.time}
    fileio.atomic_write(file, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)


def remove(file: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(file)
