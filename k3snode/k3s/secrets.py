"""The secret files K3s is pointed at: k3snode's 0600 copy of ``K3S_TOKEN`` (``token-file``) and
the ``vpn-auth-file`` line for mesh "tailscale". Their content never reaches argv, logs or
config.yaml; only their paths do."""

from __future__ import annotations

import os
import stat

from k3snode.config.model import Settings, SettingsError
from k3snode.k3s.vpn_auth import VPNAuthError, vpn_auth_line
from k3snode.record import record


@record
class SecretFile:
    """A 0600 file k3snode writes for K3s (token copy, vpn-auth line)."""

    path: str
    content: bytes


def read_secret(path: str, label: str) -> str:
    """The secret in ``path``, stripped; SettingsError naming ``label`` when missing or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except FileNotFoundError:
        raise SettingsError(f"{label}: file {path} does not exist") from None
    except PermissionError:
        raise SettingsError(f"{label}: cannot read {path} (permission denied)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{label}: cannot read {path} ({e})") from None
    if not value:
        raise SettingsError(f"{label}: file {path} is empty")
    return value


def _auth_key(settings: Settings) -> str:
    ts = settings.tailscale
    if ts.auth_key is not None:
        return ts.auth_key.reveal().strip()
    return read_secret(ts.auth_key_file, settings.where("tailscale", "auth_key_file"))


def secret_files(settings: Settings) -> tuple[SecretFile, ...]:
    """The 0600 files K3s is pointed at and k3snode writes: the K3S_TOKEN copy, the vpn-auth line."""
    out = []
    if settings.k3s.token is not None and not settings.k3s.token_file:
        out.append(SecretFile(settings.token_path, (settings.k3s.token.reveal() + "\n").encode()))
    if settings.mesh == "tailscale":
        from k3snode.mesh.tailscale.up_args import identity_args

        ts = settings.tailscale
        label = settings.where("tailscale", "auth_key_file")
        key = _auth_key(settings)
        try:  # hostname and extra args go along, so that K3s's own `tailscale up` keeps them
            line = vpn_auth_line(key, ts.control_server_url, identity_args(settings))
        except VPNAuthError as e:
            raise SettingsError(f"{label}: {e}") from None
        out.append(SecretFile(settings.vpn_auth_path, line.encode()))
    return tuple(out)


def loose_mode(path: str) -> str | None:
    """A warning when a secret file can be read by group or others, with the fix."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path else 0
    except OSError:
        return None
    if not mode & 0o044:
        return None
    return f"{path} is readable by group or others (mode {mode:04o}); run: chmod 600 {path}"
