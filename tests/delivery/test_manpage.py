"""packaging/manpage.py: the man page is generated from the CLI and is clean roff."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

from k3snode.cli import ENVIRONMENT, EXAMPLES, available, build_parser
from k3snode.config.schema import SCHEMA

SCRIPT = os.path.join(REPO, "packaging", "manpage.py")


def page(**env: str) -> str:
    return subprocess.run(
        [sys.executable, SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout


def test_every_command_option_and_setting_is_in_the_page():
    text = page()
    for name in available():
        assert ".SS k3snode " + name.replace("-", "\\-") in text
    sub = next(a for a in build_parser("apply")._actions if hasattr(a, "choices") and a.choices)
    for action in sub.choices["apply"]._actions:
        for opt in action.option_strings:
            if opt in ("-h", "--help"):
                continue
            assert opt.replace("-", "\\-") in text, opt
    plain = text.replace("\\-", "-")
    for spec in SCHEMA:
        assert f"\\fB[{spec.section}] {spec.key}\\fR" in plain, spec.name


def test_examples_environment_and_files_come_from_the_cli():
    plain = page().replace("\\-", "-").replace("\\e", "\\")
    for section in (".SH EXAMPLES", ".SH ENVIRONMENT", ".SH FILES"):
        assert section in plain
    for _, cmd in EXAMPLES:
        assert cmd in plain
    for var, _ in ENVIRONMENT:
        assert var in plain
    examples = plain.split(".SH EXAMPLES")[1]
    assert "K3S_URL=" in examples and "--mesh tailscale" in examples


def test_date_comes_from_source_date_epoch():
    assert '.TH K3SNODE 1 "2026-11-26"' in page(SOURCE_DATE_EPOCH="1795694400")


def test_no_line_starts_with_a_stray_control_character():
    for line in page().splitlines():
        if line.startswith((".", "'")):
            assert line.split()[0] in {".TH", ".SH", ".SS", ".TP", ".PP", ".RS", ".RE", ".br"}, line


@pytest.mark.skipif(not shutil.which("groff"), reason="groff not installed")
def test_groff_has_no_warnings(tmp_path):
    src = tmp_path / "k3snode.1"
    src.write_text(page())
    out = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(src)],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    shown = subprocess.run(
        ["groff", "-man", "-Tutf8", "-P-cbou", str(src)], capture_output=True, text=True, check=True
    ).stdout
    assert "--external-ip" in shown.replace("\u2010", "-")
