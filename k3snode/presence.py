"""Which files exist, learned from directory listings.

The daemon looks for the same optional files on every health check (K3s's environment files,
unit files, ``config.yaml.d``). Asking for a missing one by name — ``open``, ``stat``, ``scandir``
— is a failing system call (ENOENT) each time: 8 per check on a node without K3s, measured with
strace (issue 14: the periodic checks produce no failing syscalls). A ``Presence`` instead lists
each directory on the way down from ``/`` once, so a missing file or directory costs nothing that
fails. A file may still vanish between the listing and its use: callers keep handling
FileNotFoundError. Where a directory cannot be listed (permissions, more than ``MAX_ENTRIES``
entries) nothing is known, and ``exists`` answers True so that the caller simply tries.
"""

from __future__ import annotations

import os

MAX_ENTRIES = 20_000
_UNKNOWN = frozenset({"\0"})  # a name no listing holds: "could not list"


class Presence:
    """One look at the file system: keep it for one check, not longer (listings are cached)."""

    def __init__(self) -> None:
        self._listed: dict[str, frozenset[str] | None] = {}

    def exists(self, path: str) -> bool:
        """``path`` exists (or its directory could not be listed: try it)."""
        parent, name = os.path.split(os.path.normpath(os.path.abspath(path)))
        if not name:  # "/"
            return True
        names = self._names(parent)
        return names is _UNKNOWN or (names is not None and name in names)

    def _names(self, directory: str) -> frozenset[str] | None:
        """The entries of ``directory``; None when it does not exist or is not a directory."""
        if directory in self._listed:
            return self._listed[directory]
        parent, name = os.path.split(directory)
        if directory != parent:  # not "/": the parent must list it first
            above = self._names(parent)
            if above is None or (above is not _UNKNOWN and name not in above):
                self._listed[directory] = None
                return None
        self._listed[directory] = self._list(directory)
        return self._listed[directory]

    @staticmethod
    def _list(directory: str) -> frozenset[str] | None:
        try:
            with os.scandir(directory) as it:
                names = []
                for entry in it:
                    names.append(entry.name)
                    if len(names) > MAX_ENTRIES:
                        return _UNKNOWN
                return frozenset(names)
        except (FileNotFoundError, NotADirectoryError):
            return None  # listed by its parent, gone or a file since: not a directory now
        except OSError:
            return _UNKNOWN
