"""link.py's read path compares with the kernel's numbers under their names without importing
pyroute2 (about 140 ms); they must be pyroute2's."""

from __future__ import annotations

from k3snode.mesh.wg import link


def test_read_path_names_are_pyroute2s():
    from pyroute2.netlink.rtnl import rt_proto
    from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

    assert link.IFF_UP == IFF_UP
    assert rt_proto["static"] == link.RTPROT_STATIC


def test_reading_a_device_does_not_load_pyroute2():
    """A pass that changes nothing reads through the stdlib codec: pyroute2 is not imported."""
    import subprocess
    import sys

    from helpers import REPO, clean_env

    code = (
        "import sys; from k3snode.mesh.wg import health, link, preflight; "
        "link.exists('lo'); list(link._global_addresses()); "
        "print(sorted(m for m in sys.modules if m.startswith(('pyroute2', 'cryptography'))))"
    )
    r = subprocess.run([sys.executable, "-c", code], env=clean_env(), cwd=REPO,
                       capture_output=True, text=True, check=True)  # fmt: skip
    assert r.stdout.strip() == "[]"
