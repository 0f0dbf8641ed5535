"""The one way k3snode writes files: atomically, with the right mode, and only when content changed.

A reader (K3s, a human, ``k3snode status``) sees either the old file or the new one, never a torn
one, even if k3snode is killed with SIGKILL at any instant: the content goes to a temporary file in
the same directory, is fsynced, renamed over the target, and the directory is fsynced.

Temporary names start with a dot and end in ``.k3snode-tmp`` — never ``.yaml``/``.yml`` — so that K3s,
which reads every ``*.yaml`` in ``config.yaml.d/``, never reads a half-written file. A temporary file
left behind by a killed writer is removed by the next write to the same target.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat

from k3snode.record import record

TMP_SUFFIX = ".k3snode-tmp"


@record
class WriteResult:
    """What an atomic write did to a file."""

    path: str
    changed: bool  # content differs from what was on disk (or the file was missing)
    mode_fixed: bool = False  # content was equal, but the mode was corrected


def read_bytes(path: str) -> bytes | None:
    """The file's content, or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _tmp_prefix(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.")


def _writer_alive(tmp: str) -> bool:
    """Whether the process named in a temporary file's name (``.NAME.<pid>.<hex>``) still runs."""
    try:
        pid = int(tmp[: -len(TMP_SUFFIX)].rsplit(".", 2)[-2])
    except (ValueError, IndexError):
        return False
    return pid != os.getpid() and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(path: str) -> None:
    """Remove temporary files a killed writer left next to ``path``; never those of a writer
    that is still running (two writers at once must not delete each other's)."""
    for tmp in glob.glob(glob.escape(_tmp_prefix(path)) + "*" + TMP_SUFFIX):
        if _writer_alive(tmp):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class WriteError(OSError):
    """A write that failed (no space, read-only file system, …); ``str()`` is one line naming
    the target file, never the temporary one."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def atomic_write(path: str, data: bytes, mode: int = 0o600, make_dirs: bool = True) -> WriteResult:
    """Replace ``path`` with ``data`` atomically; do nothing when the content is already equal.

    Equal content keeps the file (and its mtime) untouched; only a wrong mode is corrected.
    Raises WriteError (an OSError) naming ``path`` when the file system refuses.
    """
    path = os.path.abspath(path)
    try:
        return _atomic_write(path, data, mode, make_dirs)
    except WriteError:
        raise
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise WriteError(e.errno or 0, reason, path) from None


def _atomic_write(path: str, data: bytes, mode: int, make_dirs: bool) -> WriteResult:
    old = read_bytes(path)
    if old == data:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            return WriteResult(path, changed=False, mode_fixed=True)
        return WriteResult(path, changed=False)
    directory = os.path.dirname(path)
    if make_dirs:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    remove_stale_tmp(path)
    tmp = f"{_tmp_prefix(path)}{os.getpid()}.{os.urandom(4).hex()}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or the caller wants wider
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(directory)
    return WriteResult(path, changed=True)


def fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on directories
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
