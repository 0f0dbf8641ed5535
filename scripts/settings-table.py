#!/usr/bin/env python3
"""Print the settings reference (a Markdown table) from k3snode's schema.

scripts/settings-table.py            print it
scripts/settings-table.py --update   rewrite the block between the markers in README.md
"""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def table() -> str:
    from k3snode.config.schema import schema_rows

    lines = ["| Setting | Default | Environment | Meaning |", "|---|---|---|---|"]
    for name, default, env, help_text in schema_rows():
        cells = [
            f"`{name}`",
            f"`{default}`" if default else "",
            env.replace(", ", "<br>"),
            help_text,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main() -> int:
    if sys.argv[1:] == ["--update"]:
        path = os.path.join(REPO, "README.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{head}{BEGIN}\n{table()}{END}{tail}")
        return 0
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
