"""The .rpm for Fedora / EL 9: rpmbuild builds it, rpmlint is clean with the documented rpmlintrc,
and the payload holds what the .deb holds — checked with rpm's own queries and by running the
installed program and the scriptlets in a Debian tree (no Fedora repository here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from debian_tree import BOOT_PACKAGES, build_rpm, debian_env, have_tools, rootfs, run_in
from helpers import REPO

from k3snode import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not have_tools("rpmbuild", "rpmlint"), reason="needs rpm and rpmlint"),
]
RPMDIR = os.path.join(REPO, "packaging", "rpm")


@pytest.fixture(scope="module")
def rpms() -> tuple[str, str]:
    return build_rpm()


def rpmq(rpm: str, *args: str) -> str:
    return subprocess.run(
        ["rpm", "-qp", *args, rpm], capture_output=True, text=True, check=True
    ).stdout


def test_built_with_the_projects_version(rpms):
    rpm, srpm = rpms
    assert os.path.basename(rpm) == f"k3snode-{__version__}-1.noarch.rpm"
    assert os.path.basename(srpm) == f"k3snode-{__version__}-1.src.rpm"


def test_rpmlint_clean_with_documented_filters(rpms):
    spec = os.path.join(RPMDIR, "k3snode.spec")
    cmd = [
        "rpmlint",
        "-c",
        os.path.join(RPMDIR, "rpmlint.toml"),
        "-r",
        os.path.join(RPMDIR, "k3snode.rpmlintrc"),
        *rpms,
        spec,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=debian_env())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 errors, 0 warnings" in out.stdout, out.stdout
    # Every filter (or group of filters) comes right after a comment giving its reason.
    with open(os.path.join(RPMDIR, "k3snode.rpmlintrc")) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("addFilter"):
            j = i - 1
            while lines[j].startswith("addFilter"):
                j -= 1
            assert lines[j].startswith("# "), f"no reason for {line}"
    # Without the filters rpmlint does fail: the clean result is the filters' doing.
    bare = subprocess.run(cmd[:3] + cmd[5:], capture_output=True, text=True, env=debian_env())
    assert bare.returncode != 0 and "non-standard-dir-perm" in bare.stdout


def test_requires_are_the_projects_dependencies(rpms):
    """The spec names its Python requirements by hand: exactly pyproject.toml's, no more, no less."""
    requires = rpmq(rpms[0], "--requires")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    wanted = {re.match(r"[A-Za-z0-9_.-]+", dep)[0].lower() for dep in deps}
    assert set(re.findall(r"python3dist\(([^)]+)\)", requires)) == wanted, requires
    assert "(python3dist(tomli) if python3 < 3.11)" in requires
    assert "python3 >= 3.9" in requires and "systemd" in requires
    # [registration] imports dnspython lazily: recommended (python3-dns), not required.
    assert "python3dist(dnspython)" in rpmq(rpms[0], "--recommends")


def test_payload_config_noreplace_unit_modes(rpms):
    rpm = rpms[0]
    listing = rpmq(rpm, "--qf", "[%{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILENAMES}\n]")
    files = {line.split()[-1]: line.split()[:-1] for line in listing.splitlines()}
    assert files["/etc/k3snode/config.toml"][1] == "cn"  # %config(noreplace)
    assert rpmq(rpm, "--configfiles").split() == ["/etc/k3snode/config.toml"]
    assert files["/var/lib/k3snode"][0] == "drwx------"
    assert files["/run/k3snode"][1] == "g"  # %ghost: made by tmpfiles at boot
    for path in (
        "/usr/bin/k3snode",
        "/usr/lib/systemd/system/k3snode.service",
        "/usr/lib/systemd/system/k3snode-wireguard-go@.service",
        "/usr/lib/tmpfiles.d/k3snode.conf",
        "/usr/share/man/man1/k3snode.1.gz",
        "/usr/share/k3snode/k3snode/cli.py",
        "/usr/share/k3snode/k3snode/data/k3s-flags.json",
        "/usr/share/licenses/k3snode-0.1.0/LICENSE",
    ):
        assert path in files, path
    assert files["/usr/bin/k3snode"][0] == "-rwxr-xr-x"
    assert not any("__pycache__" in p for p in files)


@pytest.fixture(scope="module")
def rpm_root(rpms, tmp_path_factory) -> str:
    """A Debian tree with the rpm's payload laid down by rpm itself (dependencies are Debian's)."""
    root = rootfs(str(tmp_path_factory.mktemp("rpm") / "root"), "boot", BOOT_PACKAGES)
    subprocess.run(
        ["rpm", "-i", "--root", root, "--nodeps", "--noscripts", rpms[0]],
        check=True,
        capture_output=True,
    )
    return root


def test_installed_payload_runs_and_unit_is_the_repos(rpm_root):
    assert run_in(rpm_root, "k3snode", "--version").stdout.strip() == f"k3snode {__version__}"
    out = run_in(
        rpm_root,
        "k3snode",
        "render",
        "--mesh",
        "none",
        "--provider",
        "none",
        "--external-ip",
        "16.16.16.16",
        args=["--private-network"],
    )
    assert "16.16.16.16" in out.stdout
    with (
        open(os.path.join(REPO, "systemd", "k3snode.service")) as f,
        open(os.path.join(rpm_root, "usr/lib/systemd/system/k3snode.service")) as g,
    ):
        assert f.read() == g.read()
    with (
        open(os.path.join(REPO, "systemd", "k3snode-wireguard-go@.service")) as f,
        open(os.path.join(rpm_root, "usr/lib/systemd/system/k3snode-wireguard-go@.service")) as g,
    ):
        assert f.read() == g.read()


def scriptlet(rpm: str, name: str) -> str:
    """The body of one scriptlet (``postinstall``, ``preuninstall``, ``postuninstall``)."""
    parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\):$", rpmq(rpm, "--scripts"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))[name]


def test_erase_scriptlet_removes_k3snodes_state_not_k3s_files(rpms, rpm_root):
    run_in(
        rpm_root,
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
    assert os.path.exists(os.path.join(rpm_root, "var/lib/k3snode/state.json"))
    post = scriptlet(rpms[0], "postinstall")
    postun = scriptlet(rpms[0], "postuninstall")
    run_in(rpm_root, "sh", "-ec", post, "postinstall", "1")
    run_in(rpm_root, "sh", "-ec", postun, "postuninstall", "1")  # upgrade: state stays
    assert os.path.exists(os.path.join(rpm_root, "var/lib/k3snode/state.json"))
    run_in(rpm_root, "sh", "-ec", postun, "postuninstall", "0")  # erase
    assert not os.path.exists(os.path.join(rpm_root, "var/lib/k3snode"))
    with open(os.path.join(rpm_root, "etc/rancher/k3s/config.yaml")) as f:
        assert "16.16.16.16" in f.read()


PY39 = os.path.join(REPO, ".venv39", "bin", "python")


@pytest.mark.skipif(
    not os.path.exists(PY39), reason="no Python 3.9 venv (scripts/test.sh makes one)"
)
def test_payload_runs_on_python_3_9_as_on_el9(rpm_root, tmp_path):
    """EL 9's python3 is 3.9: the payload's module tree, imported the way the wrapper does."""
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import k3snode; "
        "print('from', k3snode.__file__, file=sys.stderr); "
        "from k3snode.cli import main; sys.exit(main())"
    )
    out = subprocess.run(
        [
            PY39,
            "-s",
            "-c",
            code,
            os.path.join(rpm_root, "usr/share/k3snode"),
            "render",
            "--mesh",
            "none",
            "--provider",
            "none",
            "--external-ip",
            "16.16.16.16",
            "--config",
            os.devnull,
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "- 16.16.16.16" in out.stdout
    assert f"from {rpm_root}/usr/share/k3snode/k3snode/__init__.py" in out.stderr
    version = subprocess.run([PY39, "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Python 3.9")
