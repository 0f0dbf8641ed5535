#!/usr/bin/env python3
"""Write k3snode's man page (roff) from the CLI's own argparse parser and the settings schema.

    packaging/manpage.py > k3snode.1

Nothing is written by hand twice: commands, their options and the settings table come from
``k3snode.cli`` (commands, flags, environment, files, examples) and
``k3snode.config.schema.schema_rows()``. The date is taken from
``SOURCE_DATE_EPOCH`` when set (reproducible package builds), else today.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def esc(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and a control character at a line start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _usage(action: argparse.Action) -> str:
    """``\\fB\\-\\-flag\\fR \\fIMETAVAR\\fR`` for one optional argument."""
    flags = ", ".join(f"\\fB{esc(o)}\\fR" for o in action.option_strings)
    if action.nargs == 0:
        return flags
    if action.metavar:
        meta = action.metavar
    elif action.choices:
        meta = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        meta = action.dest.upper()
    return f"{flags} \\fI{esc(str(meta))}\\fR"


def _options(actions: list[argparse.Action]) -> list[str]:
    out = []
    for a in actions:
        if not a.option_strings or a.help == argparse.SUPPRESS:
            continue
        text = a.help or ""
        if "%(" in text:  # argparse's own placeholders, e.g. %(default)s
            text = text % {**vars(a), "prog": "k3snode"}
        out += [".TP", _usage(a), esc(text)]
    return out


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
        if epoch
        else datetime.datetime.now(tz=datetime.timezone.utc)
    )
    return when.strftime("%Y-%m-%d")


def render() -> str:
    from k3snode import __version__, cli
    from k3snode.commands import SETTING_FLAGS
    from k3snode.config.model import DEFAULT_CONFIG
    from k3snode.config.schema import schema_rows

    parser = cli.build_parser(with_epilogs=False)
    shared = {"help", "config", "verbose", *SETTING_FLAGS}

    out = [
        f'.TH K3SNODE 1 "{_date()}" "k3snode {__version__}" "User Commands"',
        ".SH NAME",
        "k3snode \\- external address, mesh and config for a K3s node",
        ".SH SYNOPSIS",
        "\\fBk3snode\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".br",
        "\\fBk3snode \\-\\-version\\fR",
        ".SH DESCRIPTION",
        esc(parser.description or ""),
        ".PP",
        esc(
            "Settings come from the settings file, then the environment, then command-line flags "
            "(each overriding the one before). The systemd unit k3snode.service runs "
            "'k3snode run' before K3s starts."
        ),
        ".SH COMMANDS",
    ]
    for name in cli.available():
        mod = cli.command_module(name)
        sp = cli.build_parser(name, with_epilogs=False)
        sub = next(a for a in sp._actions if isinstance(a, argparse._SubParsersAction))
        cp = sub.choices[name]
        out += [".SS " + esc(f"k3snode {name}"), esc(cp.description or cli.COMMANDS[name][1])]
        own = [a for a in cp._actions if a.dest not in shared]
        flags = [f.flag for f in cli.flags_of(mod)]
        if own:
            out += [".RS", *_options(own), ".RE"]
        out += [".PP", esc("Settings flags: " + (", ".join(flags) if flags else "none") + ".")]
        for what, cmd in getattr(mod, "EXAMPLES", ()):
            out += [".PP", esc(what), ".RS", f"\\fB{esc(cmd)}\\fR", ".RE"]
    out += [
        ".SH OPTIONS",
        esc("Each command accepts the settings flags listed with it; they override the settings "
            "file and the environment."),
    ]  # fmt: skip
    probe = argparse.ArgumentParser(add_help=False)
    cli.add_command_arguments(probe, None)
    out += _options([a for a in probe._actions if a.dest != "help"])
    out += [".SH SETTINGS", esc(f"The settings file is TOML ({DEFAULT_CONFIG} by default).")]
    for name, default, env, help_text in schema_rows():
        out += [".TP", f"\\fB{esc(name)}\\fR"]
        body = help_text
        if default:
            body += f" Default: {default}."
        if env:
            body += f" Environment: {env}."
        out.append(esc(body))
    out += [".SH ENVIRONMENT"]
    for var, meaning in cli.ENVIRONMENT:
        out += [".TP", f"\\fB{esc(var)}\\fR", esc(meaning)]
    out += [".SH EXIT STATUS",
        ".TP", "0", "success",
        ".TP", "1",
        esc("the command ran but the answer is no (no external address, a failed check)"),
        ".TP", "2",
        esc("a usage or settings mistake; one line on standard error, nothing written"),
        ".SH FILES",
    ]  # fmt: skip
    for path, meaning in cli.FILES:
        out += [".TP", esc(path), esc(meaning)]
    out += [".SH EXAMPLES"]
    for what, cmd in cli.EXAMPLES:
        out += [".PP", esc(what), ".RS", f"\\fB{esc(cmd)}\\fR", ".RE"]
    out += [
        ".SH SEE ALSO",
        "\\fBk3s\\fR(1), \\fBsystemctl\\fR(1), \\fBwg\\fR(8), \\fBnsupdate\\fR(1)",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
