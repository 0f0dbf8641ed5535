"""VMware Tools' ``vmware-rpctool``: one ``info-get guestinfo.<key>`` per call, bounded in time and
size. Imported by ``providers/vmware.py`` only when it reads: recognising clouds imports every
provider module, and ``subprocess`` and ``shutil`` (with zlib, bz2, lzma) cost a bare-metal
``k3snode detect`` ≈ 3 ms otherwise."""

from __future__ import annotations

import shutil
import subprocess
from typing import Callable

from k3snode.discovery.errors import MetadataError

TOOL = "vmware-rpctool"
NO_VALUE = "No value found"
MAX_VALUE = 256 * 1024
TIMEOUT = 2.0  # one call (a backdoor call answers in milliseconds)


def find(tool: str = TOOL) -> str | None:
    """The tool's path, or None when VMware Tools (open-vm-tools) is not installed."""
    return shutil.which(tool)


def get(tool: str, key: str, deadline: float, clock: Callable[[], float]) -> str | None:
    """The value of ``guestinfo.<key>``, None when unset; MetadataError when the tool fails."""

    left = min(deadline - clock(), TIMEOUT)
    if left <= 0:
        raise MetadataError(f"{TOOL}: no time left for guestinfo.{key}")
    try:
        proc = subprocess.run(
            [tool, f"info-get guestinfo.{key}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=left,
        )
    except subprocess.TimeoutExpired:
        raise MetadataError(
            f"{TOOL} info-get guestinfo.{key}: no answer within {left:.1f}s"
        ) from None
    except OSError as e:
        raise MetadataError(f"{TOOL}: {e.strerror or e}") from None
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        if err == NO_VALUE:
            return None
        raise MetadataError(f"{TOOL} info-get guestinfo.{key}: {err[:80] or proc.returncode}")
    if len(proc.stdout) > MAX_VALUE:
        raise MetadataError(f"guestinfo.{key}: larger than {MAX_VALUE} bytes")
    value = proc.stdout.decode("utf-8", "replace").strip()
    return None if value in ("", "---") else value  # "---": cloud-init's "cleared" marker
