"""``k3snode run``: the daemon (``k3snode/daemon.py``), normally started by systemd."""

from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-netlink",
        action="store_true",
        help="do not watch netlink for address changes (rely on the poll timer)",
    )


def run(args: argparse.Namespace) -> int:
    from k3snode.cli import load_settings
    from k3snode.daemon import Daemon
    from k3snode.reconcile import check_local

    settings = load_settings(args)
    check_local(settings)
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack to the log
    try:
        lock = _lock(settings.paths.run_dir)
    except OSError as e:
        from k3snode.settings import SettingsError

        where = settings.where("paths", "run_dir")
        raise SettingsError(
            f"{where}: cannot use {settings.paths.run_dir} ({e.strerror or e})"
        ) from None
    if lock is None:
        import sys

        print(
            f"k3snode: another `k3snode run` is running (lock {settings.paths.run_dir}/lock)",
            file=sys.stderr,
        )
        return 1
    try:
        return Daemon(
            settings, reload=lambda: load_settings(args), netlink=not args.no_netlink
        ).run()
    finally:
        os.close(lock)


def _lock(run_dir: str) -> int | None:
    from k3snode import locks

    fd = locks.open_lock(run_dir, "lock")
    if not locks.try_lock(fd):
        os.close(fd)
        return None
    return fd
