"""Test tiers (see README): plain tests run anywhere; ``netns`` tests need root and network
namespaces; ``system`` tests need systemd-nspawn, packaging tools or qemu. A tier that cannot run
here is skipped with the reason — CI runs them all, as root, after installing what they need.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import is_root


def pytest_configure(config):
    _python3_first_on_path(config)
    _children_keep_bytecode(config)
    _hypothesis_profile()


def _hypothesis_profile() -> None:
    """Property tests draw the same examples on every plain run (a red plain tier is never luck);
    the slow tier (CI) runs them again with ``K3SNODE_HYPOTHESIS_PROFILE=explore``: new random
    examples every run, so the search goes on."""
    try:
        from hypothesis import settings
    except ImportError:  # the property tests skip without it
        return
    settings.register_profile("plain", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(os.environ.get("K3SNODE_HYPOTHESIS_PROFILE", "plain"))


def _children_keep_bytecode(config) -> None:
    """With ``PYTHONDONTWRITEBYTECODE`` set, every k3snode process a test starts (hundreds)
    compiles k3snode again: ~30 % of its start-up. Children keep their bytecode in a cache
    outside the tree instead (``PYTHONPYCACHEPREFIX``), which the tree never sees either.
    xdist workers inherit the controller's cache."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    d = tempfile.mkdtemp(prefix="k3snode-test-pycache-")
    config.add_cleanup(lambda: shutil.rmtree(d, True))
    old = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = d

    def restore() -> None:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = old

    config.add_cleanup(restore)


def _python3_first_on_path(config) -> None:
    """The stubs and fakes (``#!/usr/bin/env python3``, stdlib only) run on the interpreter that
    runs the tests: a ``python3`` link to it goes first on PATH, so children inherit it. Through a
    version manager's shim each start costs ~0.3 s instead of ~0.03 s, and the stubs run
    hundreds of times; this also runs them on the Python under test (3.9 in the 3.9 run)."""
    d = tempfile.mkdtemp(prefix="k3snode-test-python-")
    config.add_cleanup(lambda: shutil.rmtree(d, True))
    os.symlink(os.path.realpath(sys.executable), os.path.join(d, "python3"))
    old = os.environ.get("PATH", "/usr/bin:/bin")
    os.environ["PATH"] = d + os.pathsep + old
    config.add_cleanup(lambda: os.environ.__setitem__("PATH", old))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (
            item.get_closest_marker("netns") or item.get_closest_marker("system")
        ) and not is_root():
            item.add_marker(pytest.mark.skip(reason="needs root (network namespaces / systemd)"))


@pytest.fixture
def root(tmp_path):
    """A temporary root for every path k3snode writes: settings, K3s config, state, run dir."""
    for d in ("etc/k3snode", "etc/rancher/k3s", "var/lib/k3snode", "run/k3snode"):
        (tmp_path / d).mkdir(parents=True)
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _host_settings_untouched():
    """No test may write the host's own settings (k3snode.env beside /etc/k3snode/config.toml):
    CI runs as root on a real machine, and a saved identity would change later tests."""
    before = os.path.exists("/etc/k3snode/k3snode.env")
    yield
    after = os.path.exists("/etc/k3snode/k3snode.env")
    assert before or not after, "a test wrote /etc/k3snode/k3snode.env on the host"
