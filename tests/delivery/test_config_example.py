"""packaging/config.toml, the settings file both packages install: valid as shipped, and every
commented-out example line names a real setting with a value its check accepts."""

from __future__ import annotations

import os
import re
import sys

from helpers import REPO

from k3snode.config.load import load
from k3snode.config.schema import spec as setting_spec

EXAMPLE = os.path.join(REPO, "packaging", "config.toml")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_example_as_shipped_is_valid_and_changes_no_default():
    s = load(EXAMPLE, env={})
    assert s.file == EXAMPLE
    assert s == load(None, env={"K3SNODE_CONFIG": EXAMPLE})
    assert (s.role, s.mesh, s.health.port) == ("server", "wireguard-native", 9181)


def test_every_commented_example_is_a_known_key_with_a_valid_value():
    section, seen = None, 0
    with open(EXAMPLE, encoding="utf-8") as f:
        for line in f:
            if re.match(r"^\[[a-z0-9_.]+\]$", line.strip()):
                section = line.strip()[1:-1]
                continue
            m = re.match(r"^# ([a-z_]+) = (.+)$", line.rstrip("\n"))
            if not m or section is None:
                continue
            key, raw = m.groups()
            value = tomllib.loads(f"v = {raw}")["v"]
            spec = setting_spec(section, key)  # KeyError: not a setting
            spec.check(value)  # ValueError: the example would be rejected
            seen += 1
    assert seen >= 15


def test_token_is_never_an_example_inside_the_file():
    with open(EXAMPLE, encoding="utf-8") as f:
        text = f.read()
    assert "# token = " not in text and "token_file" in text
