#!/usr/bin/env python3
"""Write k3snode's man page (roff) from the CLI's own argparse parser and the settings schema.

    packaging/manpage.py > k3snode.1

Nothing is written by hand twice: commands, their options and the settings table come from
``k3snode.cli.build_parser()`` and ``k3snode.settings.schema_rows()``. The date is taken from
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
    from k3snode import __version__
    from k3snode.cli import build_parser, common_parser
    from k3snode.settings import DEFAULT_CONFIG, schema_rows

    parser = build_parser()
    common_dests = {a.dest for a in common_parser()._actions}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}

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
    for name, sp in sub.choices.items():
        out += [".SS " + esc(f"k3snode {name}"), esc(helps.get(name) or "")]
        own = [a for a in sp._actions if a.dest not in common_dests and a.dest != "help"]
        if own:
            out += [".RS", *_options(own), ".RE"]
    out += [".SH OPTIONS", esc("Every command accepts these; they override the settings file.")]
    out += _options([a for a in common_parser()._actions if a.dest != "help"])
    out += [".SH SETTINGS", esc(f"The settings file is TOML ({DEFAULT_CONFIG} by default).")]
    for name, default, env, help_text in schema_rows():
        out += [".TP", f"\\fB{esc(name)}\\fR"]
        body = help_text
        if default:
            body += f" Default: {default}."
        if env:
            body += f" Environment: {env}."
        out.append(esc(body))
    out += [
        ".SH EXIT STATUS",
        ".TP",
        "0",
        "success",
        ".TP",
        "1",
        esc("the command ran but the answer is no (no external address, a failed check)"),
        ".TP",
        "2",
        esc("a usage or settings mistake; one line on standard error, nothing written"),
        ".SH FILES",
        ".TP",
        esc(DEFAULT_CONFIG),
        "settings",
        ".TP",
        esc("/etc/k3snode/k3snode.env"),
        esc(
            "what k3snode configure and k3snode apply saved from the environment or flags "
            "(NAME=value, 0600, no secrets); read before the settings file, after the environment"
        ),
        ".TP",
        esc("/etc/rancher/k3s/config.yaml"),
        esc("the K3s config file k3snode merges its keys into"),
        ".TP",
        esc("/var/lib/k3snode"),
        esc(
            "state: the keys k3snode manages, token and vpn-auth copies, generated keys, "
            "the registration records this server published (registration.json)"
        ),
        ".TP",
        esc("/run/k3snode"),
        "status of the running daemon",
        ".SH SEE ALSO",
        "\\fBk3s\\fR(1), \\fBsystemctl\\fR(1), \\fBwg\\fR(8), \\fBnsupdate\\fR(1)",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
