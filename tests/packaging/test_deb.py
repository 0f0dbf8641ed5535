"""The .deb: built with debhelper + dh-python, lintian-clean, installed with apt-get into a clean
Debian 12 tree, run there on Debian's own Python and pyroute2, upgraded and purged."""

from __future__ import annotations

import os
import subprocess

import pytest
from debian_tree import build_deb, debian_env, have_tools, install_deb, rootfs, run_in
from helpers import REPO, NetNS, veth

from k3snode import __version__

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("dpkg-buildpackage", "lintian", "mmdebstrap", "systemd-nspawn"),
        reason="needs dpkg-dev, debhelper, dh-python, lintian, mmdebstrap, systemd-container",
    ),
]


@pytest.fixture(scope="module")
def deb() -> str:
    return build_deb()


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_version_and_dependencies_are_debians(deb):
    assert os.path.basename(deb) == f"k3snode_{__version__}_all.deb"
    depends = dpkg_deb("-f", deb, "Depends")
    for pkg in (
        "python3-yaml",
        "python3-pyroute2",
        "python3-prometheus-client",
        "python3-cryptography",
        "python3:any",
    ):
        assert pkg in depends, depends
    # [registration] imports dnspython lazily: recommended, not required.
    assert "python3-dnspython" in dpkg_deb("-f", deb, "Recommends")
    assert "dnspython" not in depends


def test_payload_unit_conffile_man_page_tmpfiles(deb, tmp_path):
    files = {line.split()[-1].lstrip(".") for line in dpkg_deb("-c", deb).splitlines()}
    for path in (
        "/usr/bin/k3snode",
        "/lib/systemd/system/k3snode.service",
        "/lib/systemd/system/k3snode-wireguard-go@.service",
        "/etc/k3snode/config.toml",
        "/usr/share/man/man1/k3snode.1.gz",
        "/usr/lib/tmpfiles.d/k3snode.conf",
        "/usr/lib/python3/dist-packages/k3snode/data/k3s-flags.json",
    ):
        assert path in files, path
    subprocess.run(["dpkg-deb", "-x", deb, str(tmp_path / "x")], check=True)
    subprocess.run(["dpkg-deb", "-e", deb, str(tmp_path / "c")], check=True)
    with open(os.path.join(REPO, "systemd", "k3snode.service")) as f:
        assert (tmp_path / "x/lib/systemd/system/k3snode.service").read_text() == f.read()
    with open(os.path.join(REPO, "systemd", "k3snode-wireguard-go@.service")) as f:
        wg_unit = tmp_path / "x/lib/systemd/system/k3snode-wireguard-go@.service"
        assert wg_unit.read_text() == f.read()
    assert (tmp_path / "c/conffiles").read_text().split() == ["/etc/k3snode/config.toml"]
    tmpfiles = (tmp_path / "x/usr/lib/tmpfiles.d/k3snode.conf").read_text()
    assert "d /var/lib/k3snode 0700 root root" in tmpfiles
    assert "d /run/k3snode 0755 root root" in tmpfiles
    # Enabled on install, never started by it; try-restarted after an upgrade (not stopped
    # before it); stopped on removal; purge cleans k3snode's own state.
    postinst = (tmp_path / "c/postinst").read_text()
    assert "deb-systemd-helper enable 'k3snode.service'" in postinst
    assert "deb-systemd-invoke start" not in postinst and "systemctl start" not in postinst
    assert "deb-systemd-invoke try-restart 'k3snode.service'" in postinst
    assert "wireguard-go" not in postinst  # k3snode starts it; an upgrade leaves it running
    assert not (tmp_path / "c/preinst").exists()  # nothing stops it before an upgrade
    prerm = (tmp_path / "c/prerm").read_text()
    assert 'if [ "$1" = "remove" ]' in prerm
    assert "deb-systemd-invoke stop 'k3snode.service'" in prerm
    assert "rm -rf /var/lib/k3snode /run/k3snode" in (tmp_path / "c/postrm").read_text()


def test_lintian_clean(deb):
    out = subprocess.run(
        ["lintian", "--fail-on", "error,warning", deb],
        capture_output=True,
        text=True,
        env=debian_env(),
        timeout=300,
    )
    tags = [ln for ln in out.stdout.splitlines() if ln[:2] in ("E:", "W:")]
    assert out.returncode == 0 and not tags, out.stdout + out.stderr


@pytest.fixture(scope="module")
def installed(deb, tmp_path_factory) -> str:
    """A clean Debian 12 tree (mmdebstrap --variant=apt) with the .deb installed by apt-get."""
    root = rootfs(str(tmp_path_factory.mktemp("deb") / "root"), "apt")
    install_deb(root, deb, apt=True)
    return root


def test_apt_get_install_into_clean_debian_12(installed):
    out = run_in(installed, "k3snode", "--version")
    assert out.stdout.strip() == f"k3snode {__version__}"
    # Debian's interpreter and Debian's pyroute2 (0.7.2 in bookworm, older than PyPI's).
    shebang = read(os.path.join(installed, "usr/bin/k3snode")).splitlines()[0]
    assert shebang == "#!/usr/bin/python3"
    pyroute2 = run_in(installed, "dpkg-query", "-W", "-f=${Version}", "python3-pyroute2")
    assert pyroute2.stdout.startswith("0.7.")
    assert os.path.islink(
        os.path.join(installed, "etc/systemd/system/multi-user.target.wants/k3snode.service")
    )
    assert os.stat(os.path.join(installed, "var/lib/k3snode")).st_mode & 0o777 == 0o700


@pytest.fixture
def public_netns():
    """A network namespace whose default-route interface has a public IPv4 and IPv6."""
    with NetNS.create("k3sd") as ns:
        dev, _ = veth(ns, None, a_addrs=["16.16.16.16/24", "2a01:4f8:c0c:1::5/64"])
        ns.ip("route", "add", "default", "via", "16.16.16.1", "dev", dev)
        ns.ip("-6", "route", "add", "default", "via", "2a01:4f8:c0c:1::1", "dev", dev)
        yield f"--network-namespace-path=/run/netns/{ns.name}"


def test_detect_and_render_on_debian_python_and_pyroute2(installed, public_netns):
    """Interface discovery through Debian's pyroute2 0.7.2, on Debian's Python."""
    detect = run_in(installed, "k3snode", "detect", "--provider", "none", args=[public_netns])
    assert "public IPv4:  16.16.16.16 (interface)" in detect.stdout, detect.stdout
    assert "public IPv6:  2a01:4f8:c0c:1::5 (interface)" in detect.stdout, detect.stdout
    out = run_in(
        installed,
        "k3snode",
        "render",
        "--role",
        "server",
        "--mesh",
        "none",
        "--provider",
        "none",
        "--external-ip",
        "16.16.16.17",
        args=[public_netns],
    )
    assert "- 16.16.16.17\n- 2a01:4f8:c0c:1::5\n" in out.stdout, out.stdout + out.stderr
    assert "Traceback" not in out.stderr + detect.stderr


def test_conffile_kept_on_reinstall_and_when_written_before_install(deb, installed, tmp_path):
    conf = os.path.join(installed, "etc/k3snode/config.toml")
    with open(conf, "a") as f:
        f.write("# a local change: 16.16.16.17\n")
    install_deb(installed, deb, apt=True, extra=["--reinstall"])
    assert "# a local change: 16.16.16.17" in read(conf)

    # cloud-init writes the settings before the package arrives: --force-confold keeps them.
    fresh = rootfs(str(tmp_path / "root"), "apt")
    os.makedirs(os.path.join(fresh, "etc/k3snode"))
    with open(os.path.join(fresh, "etc/k3snode/config.toml"), "w") as f:
        f.write('[node]\nmesh = "none"\n')
    install_deb(fresh, deb, apt=True, extra=["-o", "Dpkg::Options::=--force-confold"])
    assert read(os.path.join(fresh, "etc/k3snode/config.toml")) == '[node]\nmesh = "none"\n'
    out = run_in(
        fresh,
        "k3snode",
        "render",
        "--provider",
        "none",
        "--external-ip",
        "16.16.16.16",
        args=["--private-network"],
    )
    assert "16.16.16.16" in out.stdout
    assert "flannel-backend" not in out.stdout  # mesh none came from the kept settings


def test_purge_removes_k3snodes_state_but_never_k3s_files(installed):
    run_in(
        installed,
        "k3snode",
        "apply",
        "--mesh",
        "none",
        "--provider",
        "none",
        "--external-ip",
        "16.16.16.16",
        "--no-restart",
        args=["--private-network"],
    )
    k3s_conf = os.path.join(installed, "etc/rancher/k3s/config.yaml")
    assert "16.16.16.16" in read(k3s_conf)
    with open(os.path.join(installed, "etc/rancher/k3s/registries.yaml"), "w") as f:
        f.write("mirrors: {}\n")
    assert os.path.exists(os.path.join(installed, "var/lib/k3snode/state.json"))
    run_in(installed, "apt-get", "purge", "-y", "-q", "k3snode")
    for gone in (
        "var/lib/k3snode",
        "etc/k3snode/config.toml",
        "usr/bin/k3snode",
        "etc/systemd/system/multi-user.target.wants/k3snode.service",
    ):
        assert not os.path.lexists(os.path.join(installed, gone)), gone
    assert "16.16.16.16" in read(k3s_conf)
    assert os.path.exists(os.path.join(installed, "etc/rancher/k3s/registries.yaml"))
