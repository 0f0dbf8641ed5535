"""The settings a command runs with: the settings file, ``k3snode.env``, the environment and the
command's flags (``config/load.py``), then ``[k3s] options`` checked against K3s's flags for the
role (``k3s/options.py``), which the config package itself knows nothing of."""

from __future__ import annotations

import argparse

from k3snode.commands import SETTING_FLAGS
from k3snode.config.load import load
from k3snode.config.model import Settings
from k3snode.k3s.options import check_settings


def load_settings(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    """Settings from file, saved environment, environment and this command's flags, with
    ``[k3s] options`` checked against K3s's flags for the role; SettingsError on a mistake."""
    overrides = {}
    names = {}
    for dest, f in SETTING_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides[(f.section, f.key)] = value
            names[(f.section, f.key)] = f.flag
    return check_settings(
        load(getattr(args, "config", None), env=env, overrides=overrides, override_names=names)
    )
