"""``k3snode reload``: check the settings, then tell the running daemon to read them again.

The unit's ``ExecReload=``: ``systemctl reload k3snode`` fails with the one-line settings error
(exit 2) when the settings are broken — the daemon is still signalled, keeps its previous
settings and shows the error in STATUS=, /healthz and ``k3snode status`` until a reload works.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from k3snode.cli_settings import load_settings
from k3snode.config.model import SettingsError
from k3snode.fileio import pid_alive
from k3snode.health.statusfile import read_status
from k3snode.k3s.configfile import ConfigFileError
from k3snode.pipeline import check_local

FLAGS = ("run-dir",)
EXAMPLES = (
    (
        "After editing /etc/k3snode/config.toml (what systemctl reload k3snode runs):",
        "k3snode reload",
    ),
    ("Only check the settings the daemon would read:", "k3snode check"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pid",
        type=int,
        metavar="PID",
        help="the daemon's process (systemd: $MAINPID); default: the one in the status file",
    )


def run(args: argparse.Namespace) -> int:

    error = None
    settings = None
    try:
        settings = load_settings(args)
        check_local(settings)
    except (SettingsError, ConfigFileError) as e:
        error = e
    pid = args.pid or _daemon_pid(settings)
    if pid:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            pid = 0
    if error is not None:
        print(f"k3snode: error: {error}; the daemon keeps its previous settings", file=sys.stderr)
        return 2
    if not pid:
        print("k3snode is not running (nothing to reload)", file=sys.stderr)
        return 1
    what = "configured: " + settings.role if settings.configured else "not configured"
    print(f"settings are good ({what}); daemon {pid} reads them again")
    return 0


def _daemon_pid(settings) -> int:

    if settings is None:
        return 0
    data = read_status(settings.status_file) or {}
    pid = data.get("pid")
    return pid if isinstance(pid, int) and pid > 0 and pid_alive(pid) else 0
