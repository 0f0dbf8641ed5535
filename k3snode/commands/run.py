"""``k3snode run``: the daemon (``k3snode/daemon/``), normally started by systemd."""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys

from k3snode import fileio, locks
from k3snode.cli_settings import load_settings
from k3snode.config.model import SettingsError
from k3snode.daemon.loop import Daemon
from k3snode.pipeline import check_local

FLAGS = None  # the daemon uses every setting
EXAMPLES = (
    ("As systemd runs it (k3snode.service):", "k3snode run"),
    ("In the foreground, logging what is asked and answered:", "k3snode run -v --health-port 0"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-netlink",
        action="store_true",
        help="do not watch netlink for address changes (rely on the poll timer)",
    )


def run(args: argparse.Namespace) -> int:

    settings = load_settings(args)
    check_local(settings)
    _store_auth_key(settings)

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack to the log
    try:
        lock = _lock(settings.paths.run_dir)
    except OSError as e:
        where = settings.where("paths", "run_dir")
        raise SettingsError(
            f"{where}: cannot use {settings.paths.run_dir} ({e.strerror or e})"
        ) from None
    if lock is None:
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


def _store_auth_key(settings) -> None:
    """K3SNODE_TAILSCALE_AUTH_KEY in the daemon's own environment: ``tailscale up`` reads the key
    from the 0600 file the settings point at (as ``configure`` and ``apply`` store it)."""
    key = settings.tailscale.auth_key
    if key is not None:
        os.makedirs(settings.paths.state_dir, mode=0o700, exist_ok=True)
        data = (key.reveal().strip() + "\n").encode()
        fileio.atomic_write(settings.tailscale.auth_key_file, data, mode=0o600)


def _lock(run_dir: str) -> int | None:

    fd = locks.open_lock(run_dir, "lock")
    if not locks.try_lock(fd):
        os.close(fd)
        return None
    return fd
