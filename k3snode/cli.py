"""The ``k3snode`` command: parses arguments, calls the pipeline, prints. No logic of its own.

Exit status: 0 success; 1 the command ran but the answer is "no" (no external address found, no
daemon running, a failed check); 2 a usage or settings mistake — one line on stderr, nothing written.
Subcommand bodies live in ``k3snode/commands/``; their modules import heavy libraries (pyroute2,
prometheus-client, PyYAML) inside functions only, so ``k3snode detect`` on a cloud never pays for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

from k3snode import __version__

# subcommand -> (module under k3snode.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("detect", "print the node's external addresses and where they came from"),
    "render": ("render", "print the K3s config that would be written (secrets redacted)"),
    "apply": ("apply", "discover, render and write the K3s config; restart K3s if it changed"),
    "configure": ("configure", "check the settings and save what defines this node (k3snode.env)"),
    "check": ("check", "preflight checks: settings, K3s config, mesh prerequisites"),
    "tailscale-policy": ("tailscale_policy", "print the tailnet policy snippet for K3s"),
    "wireguard": ("wireguard", "the server underlay: pubkey, show (peers and health), up"),
    "run": ("run", "the daemon: keep the K3s config current, restart K3s calmly, report health"),
    "reload": ("reload", "check the settings, then have the running daemon read them again"),
    "status": ("status", "what the running daemon reports; exit 1 when none runs"),
    "prepare-image": ("prepare_image", "remove per-node state before capturing an image"),
    "registration": (
        "registration",
        "this server's records in the registration DNS name: show, publish, withdraw",
    ),
}

# Flags that override settings: dest -> (section, key)
OVERRIDES: dict[str, tuple[str, str]] = {
    "role": ("node", "role"),
    "mesh": ("node", "mesh"),
    "server": ("k3s", "server"),
    "token_file": ("k3s", "token_file"),
    "node_name": ("k3s", "node_name"),
    "cluster_init": ("k3s", "cluster_init"),
    "k3s_config": ("k3s", "config"),
    "k3s_unit": ("k3s", "unit"),
    "external_ip": ("discovery", "external_ips"),
    "provider": ("discovery", "provider"),
    "metadata_endpoint": ("discovery", "metadata_endpoint"),
    "dmi_dir": ("discovery", "dmi_dir"),
    "echo": ("discovery", "echo"),
    "state_dir": ("paths", "state_dir"),
    "run_dir": ("paths", "run_dir"),
    "health_port": ("health", "port"),
}


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def common_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("settings (override the settings file and environment)")
    g.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $K3SNODE_CONFIG or /etc/k3snode/config.toml)",
    )
    g.add_argument("--role", choices=("server", "agent"))
    g.add_argument("--mesh", choices=("wireguard-native", "tailscale", "none"))
    g.add_argument("--server", metavar="URL", help="https://host:port of an existing server")
    g.add_argument("--token-file", metavar="PATH", help="file holding the cluster token")
    g.add_argument("--node-name", metavar="NAME")
    g.add_argument(
        "--cluster-init",
        action="store_const",
        const=True,
        default=None,
        help="this is the first server of an embedded-etcd cluster",
    )
    g.add_argument(
        "--external-ip",
        metavar="ADDR",
        action="append",
        help="static external address (repeat for IPv4 and IPv6); skips discovery",
    )
    g.add_argument(
        "--k3s-config",
        metavar="PATH",
        help="K3s config file or config.yaml.d/NN-name.yaml drop-in to write",
    )
    g.add_argument("--k3s-unit", metavar="UNIT", help="K3s's systemd unit")
    g.add_argument("--provider", metavar="ID", help="cloud provider id, auto or none")
    g.add_argument(
        "--metadata-endpoint",
        metavar="URL",
        help="replace the metadata service's scheme, host and port",
    )
    g.add_argument("--dmi-dir", metavar="DIR", help="read DMI fields from DIR")
    g.add_argument(
        "--echo",
        action="store_const",
        const=True,
        default=None,
        help="allow HTTPS echo services as a last resort",
    )
    g.add_argument("--state-dir", metavar="DIR", help="k3snode's state directory")
    g.add_argument("--run-dir", metavar="DIR", help="directory of the daemon's status file")
    g.add_argument(
        "--health-port", metavar="PORT", type=int, help="port of the local health endpoint (0: off)"
    )
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="k3snode",
        description="Keeps a K3s node's external address, mesh and config right, on any cloud "
        "or bare metal.",
    )
    parser.add_argument("--version", action="version", version=f"k3snode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = common_parser()
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        mod = _command_module(module)
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def _command_module(name: str) -> Any:
    return importlib.import_module(f"k3snode.commands.{name}")


def load_settings(args: argparse.Namespace, env: dict[str, str] | None = None):
    from k3snode import settings as settings_mod

    overrides = {}
    names = {}
    for dest, key in OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides[key] = value
            names[key] = "--" + dest.replace("_", "-")
    return settings_mod.load(
        getattr(args, "config", None), env=env, overrides=overrides, override_names=names
    )


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 0 else logging.INFO
    logging.basicConfig(level=level, format="k3snode: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from k3snode.k3s.configfile import ConfigFileError
    from k3snode.settings import SettingsError

    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    try:
        return int(_command_module(args._module).run(args) or 0)
    except (SettingsError, ConfigFileError, UsageError) as e:
        print(f"k3snode: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # no space, read-only, another writer: one line, not a traceback
        print(f"k3snode: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line(e: OSError) -> str:
    text = str(e) if type(e).__str__ is not OSError.__str__ else ""
    if not text:
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror or e}"
    return " ".join(text.split())[:300]
