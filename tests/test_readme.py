"""The README stays true: its settings table is the schema's, its test command is CI's."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO


def test_settings_table_matches_the_schema():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts/settings-table.py")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = text.split("<!-- settings:begin -->", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block.strip() == out.strip(), "run scripts/settings-table.py --update"


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    test_cmd = readme.split("## Install and test", 1)[1].split("```sh\n", 1)[1].split("\n", 1)[0]
    with open(os.path.join(REPO, ".ci/run"), encoding="utf-8") as f:
        ci = f.read()
    assert test_cmd == "scripts/test.sh"
    assert any(line.strip().endswith(test_cmd) for line in ci.splitlines()), ci
