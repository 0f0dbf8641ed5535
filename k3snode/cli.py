"""The ``k3snode`` command: parses arguments, calls the pipeline, prints. No logic of its own.

Exit status: 0 success; 1 the command ran but the answer is "no" (no external address found, no
daemon running, a failed check); 2 a usage or settings mistake — one line on stderr, nothing written.

Subcommand bodies live in ``k3snode/commands/``, one module each. A command is one entry in
``COMMANDS`` plus its module, which declares (all optional):

- ``FLAGS``: the names of the settings flags it uses (keys of ``SETTING_FLAGS``); only these
  appear in its help. Without ``FLAGS`` it gets them all.
- ``ENVIRONMENT``: ``(variable, meaning)`` pairs it honours beyond those of its settings flags.
- ``EXAMPLES``: ``(what it does, command line)`` pairs, shown at the end of its help and in the
  man page (and run by ``tests/test_help.py`` in a sandbox).
- ``add_arguments(parser)`` and ``run(args) -> int``.

Only the module of the command being run is imported (``k3snode --version`` imports none), and
the modules import heavy libraries (pyroute2, prometheus-client, PyYAML) inside functions only.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import importlib.util
import os
import sys
from typing import Any

from k3snode import __version__, suggest
from k3snode.commands import SETTING_FLAGS, SettingFlag
from k3snode.errors import UserError

# command -> (module under k3snode.commands, one-line help). A command whose module is not
# installed (yet) is left out of the parser.
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


# What every command honours, and what k3snode --help shows.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("K3SNODE_CONFIG", "settings file (default /etc/k3snode/config.toml)"),
    ("K3S_URL", "server to join, as K3s's installer ([k3s] server)"),
    ("K3S_TOKEN", "cluster token; stored as a 0600 file, never written inline"),
    ("K3S_TOKEN_FILE", "file holding the cluster token ([k3s] token_file)"),
    ("K3S_NODE_NAME", "K3s's node name ([k3s] node_name)"),
    ("K3SNODE_ROLE, K3SNODE_MESH", "role and mesh ([node] role, mesh)"),
    ("K3SNODE_EXTERNAL_IPS", "static external addresses, comma-separated"),
    ("K3SNODE_TAILSCALE_AUTH_KEY", "Tailscale auth key (environment only; stored 0600)"),
    ("K3SNODE_<SECTION>_<KEY>", "any setting, e.g. K3SNODE_DISCOVERY_PROVIDER=aws; booleans: "
     "true/false/1/0"),
)  # fmt: skip

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("First server of a cluster (embedded etcd), addresses discovered:",
     "k3snode apply --role server --cluster-init"),
    ("An agent joining it, with K3s installer's variables, kept by the daemon from now on:",
     "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN=K10example::server:secret k3snode configure"),
    ("An agent behind NAT on Tailscale:",
     "K3S_URL=https://203.0.113.10:6443 K3S_TOKEN_FILE=/etc/k3snode/token "
     "K3SNODE_TAILSCALE_AUTH_KEY_FILE=/etc/k3snode/tailscale.key k3snode apply --mesh tailscale"),
)  # fmt: skip

FILES: tuple[tuple[str, str], ...] = (
    ("/etc/k3snode/config.toml", "settings"),
    (
        "/etc/k3snode/k3snode.env",
        "what k3snode configure and k3snode apply saved from the "
        "environment or flags (NAME=value, 0600, no secrets); read before the settings file, after "
        "the environment",
    ),
    ("/etc/rancher/k3s/config.yaml", "the K3s config file k3snode merges its keys into"),
    (
        "/var/lib/k3snode",
        "state: the keys k3snode manages, token and vpn-auth copies, generated "
        "keys, the registration records this server published (registration.json)",
    ),
    ("/run/k3snode/status.json", "what the running daemon reports (k3snode status)"),
)


def terminal_width() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else standard output's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``k3snode: error: --role: must be ... (got ...)``, exit 2."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's own asks shutil for the width (shutil imports zlib, bz2 and lzma: ≈ 1.5 ms
        # of every command, as each add_argument makes a formatter); the same answer from os
        return self.formatter_class(prog=self.prog, width=terminal_width() - 2)

    def error(self, message: str) -> Any:  # type: ignore[override]
        print(f"k3snode: error: {self._one_line(message)}", file=sys.stderr)
        sys.exit(2)

    def _one_line(self, message: str) -> str:
        message = message.replace("\n", " ")
        if message.startswith("argument "):
            message = message[len("argument ") :]
            flag, _, rest = message.partition(": ")
            flag = flag.split("/")[-1]
            if rest.startswith("expected one argument"):
                return f"{flag}: needs a value"
            return f"{flag}: {rest}"
        if message.startswith("unrecognized arguments: "):
            bad = message.split(": ", 1)[1].split()[0]
            parser = getattr(self, "command_parser", None) or self
            known = [o for a in parser._actions for o in a.option_strings]
            more = suggest.did_you_mean(bad.split("=")[0], known)
            flag = bad.split("=")[0]
            if flag in {f.flag for f in SETTING_FLAGS.values()}:
                return f"{flag}: not used by {parser.prog}; see {parser.prog} --help"
            if bad.startswith("-"):
                return f"unknown option {bad}{more}; see {parser.prog} --help"
            return f"unexpected argument {bad!r}; see {parser.prog} --help"
        if "required" in message and "COMMAND" in message:
            return f"a command is needed ({', '.join(available())}); see k3snode --help"
        if message.startswith("the following arguments are required: "):
            missing = message.split(": ", 1)[1]
            choices = [
                str(c) for a in self._actions if a.dest == missing for c in (a.choices or ())
            ]
            what = f"{missing} ({', '.join(choices)})" if choices else missing
            return f"{self.prog}: needs {what}; see {self.prog} --help"
        return message


def installed(name: str) -> bool:
    """The command's module is installed (a cheap lookup: nothing is imported)."""
    return importlib.util.find_spec(f"k3snode.commands.{COMMANDS[name][0]}") is not None


def available() -> list[str]:
    """Commands whose module is installed."""
    return [name for name in COMMANDS if installed(name)]


def command_module(name: str) -> Any:
    return importlib.import_module(f"k3snode.commands.{COMMANDS[name][0]}")


def flags_of(mod: Any) -> list[SettingFlag]:
    names = getattr(mod, "FLAGS", None)
    if names is None:
        return list(SETTING_FLAGS.values())
    return [SETTING_FLAGS[n.lstrip("-").replace("-", "_")] for n in names]


def environment_of(mod: Any) -> list[tuple[str, str]]:
    """``(variable, meaning)`` for what a command honours: K3SNODE_CONFIG, the variables of the
    settings behind its flags, and its own ``ENVIRONMENT``."""
    from k3snode.config.schema import spec

    out = [ENVIRONMENT[0]]
    for f in flags_of(mod):
        s = spec(f.section, f.key)
        out.append((", ".join((*s.env, s.generic_env)), f"same as {f.flag}"))
        out.extend(_RELATED.get(f.dest, ()))
    out.extend(getattr(mod, "ENVIRONMENT", ()))
    if getattr(mod, "FLAGS", None) != ():
        out.append(("K3SNODE_<SECTION>_<KEY>", "any other setting (see k3snode(1), SETTINGS)"))
    return out


# Variables without a flag of their own, shown with the flag they belong with.
_RELATED: dict[str, tuple[tuple[str, str], ...]] = {
    "token_file": (("K3S_TOKEN", "the cluster token itself; stored as a 0600 file, never inline"),),
    "mesh": (
        ("K3SNODE_TAILSCALE_AUTH_KEY", "mesh tailscale: the auth key (environment only)"),
        ("K3SNODE_TAILSCALE_AUTH_KEY_FILE", "mesh tailscale: file holding the auth key"),
    ),
}


def epilog(env: list[tuple[str, str]], examples) -> str:
    lines = ["environment:"]
    for name, meaning in env:
        lines.append(f"  {name}\n      {meaning}")
    if examples:
        lines.append("\nexamples:")
        for what, cmd in examples:
            lines.append(f"  {what}\n    {cmd}")
    return "\n".join(lines)


def add_command_arguments(p: argparse.ArgumentParser, mod: Any) -> None:
    """Everything a command's parser has: --config, its settings flags, its own, -v."""
    g = p.add_argument_group("settings (override the settings file and the environment)")
    g.add_argument(
        "--config",
        metavar="PATH",
        help="settings file (default: $K3SNODE_CONFIG or /etc/k3snode/config.toml)",
    )
    for f in flags_of(mod):
        g.add_argument(f.flag, dest=f.dest, help=f.help, **f.kwargs)
    if hasattr(mod, "add_arguments"):
        mod.add_arguments(p)
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="also log what is asked and answered"
    )


def _command_kwargs(name: str, mod: Any, with_epilog: bool = True) -> dict[str, Any]:
    help_text = COMMANDS[name][1]
    doc = (mod.__doc__ or help_text).strip().split("\n\n")[0].replace("``", "")
    if doc.startswith(f"k3snode {name}") and ": " in doc:
        doc = doc.split(": ", 1)[1]
        doc = doc[0].upper() + doc[1:]
    return {
        "help": help_text,
        "description": doc,
        "epilog": epilog(environment_of(mod), getattr(mod, "EXAMPLES", ()))
        if with_epilog
        else None,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def build_parser(
    command: str | None = None, with_epilogs: bool = True, others: bool = True
) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s subparser is complete (its module is imported).
    ``others=False`` leaves the other commands out (each parser costs ≈ 0.7 ms to make): for a
    run of ``command`` that asks for no help, nothing but its own parser is ever shown."""
    parser = Parser(
        prog="k3snode",
        description="Keeps a K3s node's external address, mesh and config right, on any cloud "
        "or bare metal.",
        epilog=epilog(list(ENVIRONMENT), EXAMPLES) if with_epilogs else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"k3snode {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in available() if others else [command]:
        help_text = COMMANDS[name][1]
        if name != command:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        mod = command_module(name)
        sp = sub.add_parser(name, **_command_kwargs(name, mod, with_epilogs))
        add_command_arguments(sp, mod)
        parser.command_parser = sp  # type: ignore[attr-defined]
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command named in argv (the first word that is not an option), or None."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def setup_logging(verbose: int) -> None:
    # here, not at the top: logging and k3snode.logs (≈ 15 ms) are not needed for --version/--help
    from k3snode import logs

    logs.setup(verbose)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    if command is not None and command not in COMMANDS:
        more = suggest.did_you_mean(command, COMMANDS)
        print(f"k3snode: error: unknown command {command!r}{more}; see k3snode --help",
              file=sys.stderr)  # fmt: skip
        return 2
    if command is not None and not installed(command):
        print(f"k3snode: error: {command}: not in this version of k3snode", file=sys.stderr)
        return 2
    wants_help = any(a in ("-h", "--help") for a in argv)
    parser = build_parser(command, with_epilogs=wants_help, others=wants_help or command is None)
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    return run_command(args)


def entry() -> None:
    """The ``k3snode`` executable (console script, ``python -m k3snode``, the rpm's wrapper):
    ``main()``, then out without tearing the interpreter down. Freeing every module at exit costs a
    short command ≈ 9 ms of CPU (measured: detect's imports, 62.7 against 54.0 ms) — a tenth of
    ``k3snode detect``. The exit handlers run first (logging's flush), then the standard streams
    are flushed; while another thread still runs, the interpreter's own exit waits for it."""
    try:
        code = main()
    except SystemExit as e:  # argparse's --help, --version and usage errors
        if e.code is not None and not isinstance(e.code, int):
            raise
        code = e.code or 0
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter would run: logging.shutdown and the like
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def run_command(args: argparse.Namespace) -> int:
    try:
        return int(command_module(args.command).run(args) or 0)
    except UserError as e:  # settings, the K3s config file, the command line
        print(f"k3snode: error: {e}{_root_hint(str(e), args.command)}", file=sys.stderr)
        return 2
    except PermissionError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"k3snode: error: {where}permission denied{_root_hint('permission denied', args.command)}",
              file=sys.stderr)  # fmt: skip
        return 1
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


def _root_hint(message: str, command: str) -> str:
    """Permission trouble as a non-root user: say what to do about it."""

    if "permission denied" in message.lower() and os.geteuid() != 0:
        return f"; k3snode reads and writes root's files: run it as root (sudo k3snode {command})"
    return ""
