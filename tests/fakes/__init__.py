"""Fakes the tests (and the benchmark) share: a metadata service (``imds.py``) and DMI directories
of each cloud and of real hardware (``dmi/<name>/``)."""

from __future__ import annotations

import os

DMI_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dmi")


def dmi_dir(name: str) -> str:
    """``tests/fakes/dmi/<name>``: a provider id, or baremetal, baremetal-dell, kvm, hyperv…"""
    path = os.path.join(DMI_ROOT, name)
    if not os.path.isdir(path):
        raise FileNotFoundError(path)
    return path
