"""Preflight checks that concern settings and K3s's config file (``k3snode check``)."""

from __future__ import annotations

from k3snode.config.model import Settings
from k3snode.health.checks import Finding
from k3snode.k3s import configfile
from k3snode.k3s.secrets import loose_mode


def settings_and_config(settings: Settings) -> list[Finding]:

    out = [
        Finding(
            "ok",
            "settings",
            f"valid ({settings.file or 'no settings file'}); role "
            f"{settings.role}, mesh {settings.mesh}, K3s unit {settings.k3s.unit}",
        )
    ]
    if not settings.configured:
        out.append(Finding("warning", "settings", settings.not_configured()))

    for path in (settings.k3s.token_file, settings.tailscale.auth_key_file):
        warning = loose_mode(path)
        if warning:
            out.append(Finding("warning", "secrets", warning))
    try:
        plan = configfile.plan(settings.k3s.config, {}, set(), settings.role)
    except configfile.ConfigFileError as e:
        return [*out, Finding("error", "k3s", str(e))]
    out.extend(Finding("warning", "k3s", w) for w in plan.warnings)
    return out
