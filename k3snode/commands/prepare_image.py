"""``k3snode prepare-image``: make this machine (or a mounted image) ready to be captured.

Removes what belongs to this one node and would be wrong on every clone: k3snode's state (the
keys it manages, the last good discovery, its token and vpn-auth copies), the keys it generated
(the underlay's private key), the daemon's status file, and k3snode's keys in K3s's config file
(the builder's external address), and the node name saved in ``k3snode.env``. Settings stay,
including ``k3snode.env`` and the token and auth-key files they name (also when ``k3snode
configure`` stored them in the state directory). A server's records in the registration DNS name
are withdrawn first (docs/registration.md). K3s's own per-node data is removed only with
``--k3s``. What else a clone usually needs
(a new machine-id, no Tailscale identity, ...) is printed, never touched.

``--root DIR`` works on an image mounted at DIR: every path, the settings file's included, is
taken inside DIR, and nothing is asked of the running system.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys

from k3snode import envfile, fileio
from k3snode import state as state_mod
from k3snode.cli_settings import load_settings
from k3snode.config.model import DEFAULT_CONFIG
from k3snode.errors import UsageError
from k3snode.k3s import configfile
from k3snode.record import field, record
from k3snode.registration import published, withdraw

# Processes that are K3s (it renames itself "k3s server" / "k3s agent").
K3S_COMMS = frozenset({"k3s", "k3s-server", "k3s-agent", "k3s-init"})
K3S_NODE_PASSWORD = "/etc/rancher/node/password"
K3S_DATA_DIR = "/var/lib/rancher/k3s"
K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"

# Printed, never done: what else usually makes clones collide.
ALSO_CLEAN = (
    ("/etc/machine-id", "truncate -s 0 /etc/machine-id && rm -f /var/lib/dbus/machine-id",
     "systemd's machine id; empty, a new one is made at first boot"),
    (K3S_NODE_PASSWORD, "rm -f /etc/rancher/node/password",
     "K3s's node password: a clone with the same name is refused by the server (or use --k3s)"),
    ("/var/lib/tailscale/tailscaled.state", "systemctl stop tailscaled && rm -f /var/lib/tailscale/tailscaled.state",
     "Tailscale's node key: clones would share one tailnet identity"),
    (K3S_DATA_DIR + "/server", "k3snode prepare-image --k3s",
     "K3s's datastore, certificates and token from a K3s that ran on this machine"),
    ("/etc/ssh/ssh_host_ed25519_key", "rm -f /etc/ssh/ssh_host_*",
     "SSH host keys (cloud-init makes new ones on first boot)"),
    ("/var/lib/cloud/instance", "cloud-init clean --logs",
     "cloud-init's record of this instance, so that it runs again on the clone"),
)  # fmt: skip


class Busy(Exception):
    """Something that must be stopped first is running."""


@record(frozen=False)
class Report:
    """What `prepare-image` did, file by file, for its summary."""

    removed: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # files k3snode's keys were taken out of
    withdrawn: list[str] = field(default_factory=list)  # registration records taken out of DNS
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


FLAGS = ("role", "k3s-config", "state-dir", "run-dir")
EXAMPLES = (
    ("See what would be removed before capturing this machine:", "k3snode prepare-image --dry-run"),
    (
        "An image mounted at /mnt, K3s's own node data too:",
        "k3snode prepare-image --root /mnt --k3s",
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        metavar="DIR",
        default="/",
        help="work on an image mounted at DIR instead of this machine",
    )
    p.add_argument(
        "--k3s",
        action="store_true",
        help="also remove K3s's per-node data (datastore, certificates, node "
        "password, admin kubeconfig); airgap images stay",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; remove nothing"
    )


def run(args: argparse.Namespace) -> int:

    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        raise UsageError(f"--root: not a directory (got {args.root!r})")
    env = None
    if root != "/":
        # The image's settings, not this machine's environment; no settings file: the defaults.

        env = {}
        if getattr(args, "config", None) is None:
            inside = _in(root, DEFAULT_CONFIG)
            args.config = inside if os.path.exists(inside) else os.devnull
    settings = load_settings(args, env=env)
    try:
        if root == "/":
            _refuse_if_running(settings, args.k3s)
        report = prepare(settings, root, k3s=args.k3s, dry_run=args.dry_run)
    except Busy as e:
        print(f"k3snode: {e}; nothing removed", file=sys.stderr)
        return 1
    _print(report, root, args.dry_run, args.k3s)
    return 0


def _in(root: str, path: str) -> str:
    return path if root == "/" else os.path.join(root, path.lstrip("/"))


def _refuse_if_running(settings, k3s: bool) -> None:
    pid = _daemon_pid(settings.status_file)
    if pid is not None:
        raise Busy(f"k3snode is running (pid {pid}): stop it first (systemctl stop k3snode)")
    if k3s:
        pid = _k3s_pid()
        if pid is not None:
            raise Busy(f"K3s is running (pid {pid}): stop it first (systemctl stop k3s k3s-agent)")


def _daemon_pid(status_file: str) -> int | None:
    """The pid in the daemon's status file, when that process is alive (and not us)."""
    try:
        with open(status_file, encoding="utf-8") as f:
            pid = json.load(f).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(pid, int) or pid <= 1 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _k3s_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/comm", encoding="utf-8") as f:
            if f.read().strip() in K3S_COMMS:
                return int(entry)
    return None


def prepare(settings, root: str, k3s: bool = False, dry_run: bool = False) -> Report:
    """Remove the per-node state of ``settings`` inside ``root``; return what was done."""

    report = Report()
    state_dir = _in(root, settings.paths.state_dir)
    run_dir = _in(root, settings.paths.run_dir)
    # 1. This server's records in the registration name, first: a failure changes nothing.
    _withdraw_registration(settings, root, dry_run, report)
    # 2. k3snode's keys out of K3s's config files (they hold this machine's addresses).
    try:
        st = state_mod.load(_in(root, settings.state_file))
    except state_mod.StateError as e:
        report.notes.append(f"{e}: k3snode's keys in K3s's config were left as they are")
        st = state_mod.State()
    for path, keys in st.managed.items():
        if keys and _strip_keys(_in(root, path), set(keys), settings.role, dry_run, report):
            report.cleaned.append(_in(root, path))
    # 3. k3snode's own state and status: the whole directory content when it is k3snode's own
    #    directory, else only the files k3snode makes there.
    own = {
        os.path.basename(p)
        for p in (settings.state_file, settings.vpn_auth_path, settings.status_file)
    }
    own.update(("token", "registration.json", "write.lock"))
    named = {_in(root, p) for p in (settings.k3s.token_file, settings.tailscale.auth_key_file) if p}
    for directory in (state_dir, run_dir):
        _clear(directory, own, dry_run, report, keep=named)
    _forget_node_name(settings, root, dry_run, report)
    # 4. Generated keys kept elsewhere (the underlay's private key).
    key = _in(root, settings.underlay.private_key_file)
    if os.path.lexists(key):
        if _inside(key, state_dir):
            pass  # removed with the state directory
        elif _inside(key, _in(root, "/var/lib")):
            _remove(key, dry_run, report)
        else:
            report.notes.append(
                f"{key}: the underlay's private key is outside k3snode's state directory; "
                "remove it if it was generated on this machine"
            )
    # 5. Settings stay.
    kept = [settings.file or ""]
    kept += [_in(root, p) for p in (settings.k3s.token_file, settings.tailscale.auth_key_file) if p]
    report.kept.extend(p for p in kept if p and p != os.devnull and os.path.exists(p))
    # 6. K3s's per-node data, only when asked.
    if k3s:
        _k3s_data(settings, root, dry_run, report)
    return report


def _withdraw_registration(settings, root: str, dry_run: bool, report: Report) -> None:
    """Withdraw what this machine published (``/`` only: an image's node is not running). A
    failure stops everything: the record would point agents at a machine that is gone."""

    file = _in(root, published.path(settings.paths.state_dir))
    rec = published.load(file)
    if rec is None or not rec.addresses:
        return
    what = f"{', '.join(rec.addresses)} from {rec.name}"
    if root != "/":
        report.notes.append(
            f"the image's node published {what}: withdraw it where the DNS server is reachable "
            "(k3snode registration withdraw on that node, or nsupdate)"
        )
        return
    if dry_run:
        report.withdrawn.append(what)
        return
    out = withdraw(settings)
    if not out.ok:
        raise Busy(
            f"cannot withdraw {what}: {out.detail} (fix and retry, or remove {file} to leave "
            "the record in DNS)"
        )
    report.withdrawn.append(what)


def _inside(path: str, directory: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(directory).rstrip("/") + "/")


def _clear(
    directory: str, own: set[str], dry_run: bool, report: Report, keep: set[str] = frozenset()
) -> None:
    if not os.path.isdir(directory):
        return
    everything = "k3snode" in os.path.basename(directory.rstrip("/"))
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if path in keep:
            continue  # a token or auth key the settings name (stored by `k3snode configure`)
        if everything or name in own or name.endswith(".k3snode-tmp"):
            _remove(path, dry_run, report)


def _forget_node_name(settings, root: str, dry_run: bool, report: Report) -> None:
    """``K3S_NODE_NAME`` saved in k3snode.env is this machine's; every other saved value (server,
    token file, role, mesh) is what the clones should have too."""

    if not settings.env_file or settings.env_file.startswith("/dev/"):
        return
    path = settings.env_file  # beside the settings file read, inside the image with --root
    try:
        saved = envfile.read(path)
    except envfile.EnvFileError as e:
        report.notes.append(f"{e}; left as it is")
        return
    if not saved or "K3S_NODE_NAME" not in saved:
        return
    if not dry_run:
        envfile.write(path, {k: v for k, v in saved.items() if k != "K3S_NODE_NAME"})
    report.cleaned.append(path)


def _remove(path: str, dry_run: bool, report: Report) -> None:
    if not dry_run:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    report.removed.append(path)


def _strip_keys(path: str, keys: set[str], role: str, dry_run: bool, report: Report) -> bool:

    if not os.path.exists(path):
        return False
    try:
        plan = configfile.plan(path, {}, keys, role)
    except configfile.ConfigFileError as e:
        report.notes.append(f"{e}; k3snode's keys were left in it")
        return False
    if not plan.changed:
        return False
    if dry_run:
        return True
    if plan.new_text.strip() == "" and configfile.is_dropin(path):
        os.unlink(path)
        fileio.fsync_dir(os.path.dirname(path))
    else:
        configfile.apply(plan)
    return True


def _k3s_data(settings, root: str, dry_run: bool, report: Report) -> None:
    data_dir = _k3s_data_dir(_in(root, settings.k3s.config)) or K3S_DATA_DIR
    base = _in(root, data_dir)
    for sub in ("server", "storage"):
        if os.path.lexists(os.path.join(base, sub)):
            _remove(os.path.join(base, sub), dry_run, report)
    agent = os.path.join(base, "agent")
    if os.path.isdir(agent):
        for name in sorted(os.listdir(agent)):
            if name != "images":  # pre-loaded airgap images are what an image is for
                _remove(os.path.join(agent, name), dry_run, report)
    for path in (K3S_NODE_PASSWORD, K3S_KUBECONFIG):
        if os.path.lexists(_in(root, path)):
            _remove(_in(root, path), dry_run, report)


def _k3s_data_dir(config_path: str) -> str | None:
    """``data-dir`` from K3s's config file, when set there."""
    import yaml

    try:
        with open(config_path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return None
    value = data.get("data-dir") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value.startswith("/") else None


def _print(report: Report, root: str, dry_run: bool, k3s: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for path in report.removed:
        print(f"{verb} {path}")
    for path in report.cleaned:
        print(f"{'would take' if dry_run else 'took'} k3snode's keys out of {path}")
    for what in report.withdrawn:
        print(f"{'would withdraw' if dry_run else 'withdrew'} {what} (registration)")
    for path in report.kept:
        print(f"kept {path} (settings)")
    for note in report.notes:
        print(f"note: {note}")
    if not report.removed and not report.cleaned and not report.withdrawn:
        print("no per-node k3snode state found")
    todo = [
        (path, cmd, why)
        for path, cmd, why in ALSO_CLEAN
        if os.path.lexists(_in(root, path)) and not (k3s and cmd.endswith("--k3s"))
        and not (k3s and path == K3S_NODE_PASSWORD)
    ]  # fmt: skip
    if todo:
        print("Not touched; usually also cleaned before capturing an image:")
        for path, cmd, why in todo:
            print(f"  {_in(root, path)}: {why}\n    {cmd}")
