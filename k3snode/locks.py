"""Locks, opened without following symbolic links.

- ``<run_dir>/lock``: held by ``k3snode run`` for its lifetime (one daemon per node).
- ``<state_dir>/write.lock``: held around every write of K3s's config and k3snode's state, by ``apply`` and
  by each of the daemon's passes alike, so two writers never interleave their read-modify-write
  of ``state.json`` and config.yaml (which orphaned managed keys). A second writer waits a few
  seconds, then gives up with "another k3snode is writing".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator

WRITE_WAIT = 5.0


class LockBusy(OSError):
    """Another process holds the lock; the message is one line."""

    def __str__(self) -> str:
        return str(self.args[1]) if len(self.args) > 1 else super().__str__()


def open_lock(directory: str, name: str, dir_mode: int = 0o755) -> int:
    """A file descriptor of ``directory/name``: created 0644 if missing, never through a link."""
    os.makedirs(directory, mode=dir_mode, exist_ok=True)
    path = os.path.join(directory, name)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(e.errno, f"{path} is a symbolic link; refusing to use it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file; refusing to use it")
    return fd


def try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def writing(state_dir: str, wait: float = WRITE_WAIT) -> Iterator[None]:
    """Hold ``write.lock`` for the block, waiting up to ``wait`` seconds for another writer."""
    fd = open_lock(state_dir, "write.lock", dir_mode=0o700)
    try:
        end = time.monotonic() + wait
        while not try_lock(fd):
            if time.monotonic() >= end:
                raise LockBusy(
                    errno.EWOULDBLOCK,
                    f"another k3snode is writing (lock {os.path.join(state_dir, 'write.lock')} "
                    f"held for more than {wait:.0f}s); nothing written, try again",
                )
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)
