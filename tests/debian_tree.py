"""Real Debian 12 (and 13) root filesystems and systemd-nspawn machines for the system tier.

- ``build_deb()``: k3snode's .deb, built once per test run with ``packaging/build-deb.sh``.
- ``rootfs(name, packages, suite=)``: a Debian 12 (default) or 13 tree from mmdebstrap, cached as a
  tarball under ``<repo>/.cache/rootfs/`` keyed by suite and package list, unpacked fresh for every
  test.
- ``apt_repository(suite, packages, wanted)``: a flat apt repository (cached) with the .debs that
  ``wanted`` (names or a .deb file) need on top of such a tree — a stand-in for the Debian mirror
  that an offline container can be served.
- ``run_in(root, cmd)``: one command in the tree under ``systemd-nspawn`` (with /proc, /dev).
- ``Machine``: the tree booted with systemd as PID 1, driven with ``nsenter``; ``show()`` and
  ``journal()`` give systemd's own view of a unit.

Pitfalls handled here (see the testing recipes): ``--register=no --keep-unit`` (no machined on the
host), writes to ``/run`` only from inside, Debian's own tools with a Debian ``PATH``.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence

from helpers import REPO, wait_for

CACHE = os.path.join(REPO, ".cache")
# Packages built from this checkout: never in .cache, which other checkouts may share (a build there
# from another worktree replaces or removes this one's .deb half-way through a test run).
BUILT = os.path.join(REPO, "build", "packages")
SUITE = "bookworm"
SUITES = ("bookworm", "trixie")  # Debian 12 and 13
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# What a Debian cloud image has that matters to k3snode's installer — systemd, Python (for
# cloud-init), curl and CA certificates — and none of k3snode's own dependencies, which the
# installer has to bring in.
CLOUD_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "python3",
    "ca-certificates",
    "curl",
)

# What k3snode needs from Debian, plus systemd to boot: pre-installed so that booted tests install
# the .deb with dpkg alone, offline.
BOOT_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "python3",
    "python3-pyroute2",
    "python3-yaml",
    "python3-prometheus-client",
    "python3-cryptography",
    "python3-requests",
    "python3-tomli",
    "curl",
    "wireguard-go",
    "wireguard-tools",
)


def have_tools(*names: str) -> bool:
    return all(shutil.which(n) for n in names)


def debian_env(**extra: str) -> dict[str, str]:
    env = {"PATH": DEBIAN_PATH, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def mirror() -> str:
    """The host's Debian mirror (the CI machine may only reach that one)."""
    with contextlib.suppress(OSError), open("/etc/apt/sources.list.d/debian.sources") as f:
        for line in f:
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


@functools.cache
def build_deb() -> str:
    """Path of k3snode_<version>_all.deb, built from this checkout (once per test run)."""
    out = subprocess.run(
        [os.path.join(REPO, "packaging", "build-deb.sh"), os.path.join(BUILT, "deb")],
        capture_output=True,
        text=True,
        env=debian_env(),
        timeout=600,
    )
    assert out.returncode == 0, f"build-deb.sh failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout.strip().splitlines()[-1]


def rootfs_tarball(name: str, packages: Sequence[str] = (), suite: str = SUITE) -> str:
    """A cached mmdebstrap tarball (variant apt plus ``packages``); built when missing."""
    key = hashlib.sha256(f"{suite} apt {sorted(packages)}".encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "rootfs", f"{name}-{suite}-{key}.tar.zst")
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.tar.zst"
    cmd = ["mmdebstrap", "--quiet", "--variant=apt", "--format=tar"]
    if packages:
        cmd.append("--include=" + ",".join(packages))
    cmd += [suite, tmp, mirror()]
    out = subprocess.run(cmd, capture_output=True, text=True, env=debian_env(), timeout=900)
    if out.returncode != 0:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AssertionError(f"mmdebstrap failed:\n{out.stderr[-3000:]}")
    os.rename(tmp, path)
    return path


def _unpack(tarball: str, dest: str) -> str:
    os.makedirs(dest, exist_ok=True)
    subprocess.run(
        f"zstd -dc {tarball} | tar -C {dest} --numeric-owner -xf -",
        shell=True,
        check=True,
        timeout=300,
    )
    return dest


def rootfs(
    dest: str,
    name: str,
    packages: Sequence[str] = (),
    extra: Sequence[str] = (),
    suite: str = SUITE,
) -> str:
    """Unpack a fresh copy of the cached tree into ``dest``; return ``dest``. ``extra``: packages
    apt-get installs on top of ``packages`` (a second cached tarball, cheaper than mmdebstrap)."""
    tarball = rootfs_tarball(name, packages, suite)
    if not extra:
        return _unpack(tarball, dest)
    key = hashlib.sha256(f"{tarball} {sorted(extra)}".encode()).hexdigest()[:12]
    derived = os.path.join(CACHE, "rootfs", f"{name}+{'+'.join(extra)}-{key}.tar.zst")
    if not os.path.exists(derived):
        tmp = dest + ".build"
        _unpack(tarball, tmp)
        run_in(tmp, "apt-get", "update", "-qq")
        run_in(tmp, "apt-get", "install", "-y", "-q", "--no-install-recommends", *extra)
        run_in(tmp, "apt-get", "clean")
        part = f"{derived}.{os.getpid()}.tmp"
        subprocess.run(
            f"tar -C {tmp} --numeric-owner -cf - . | zstd -q -T2 -3 > {part}",
            shell=True,
            check=True,
            timeout=300,
        )
        os.rename(part, derived)
        shutil.rmtree(tmp)
    return _unpack(derived, dest)


def apt_repository(
    name: str, packages: Sequence[str], wanted: Sequence[str], suite: str = SUITE
) -> str:
    """A flat apt repository directory (``Packages``, ``Release``, the .debs) holding what
    ``apt-get install wanted`` downloads on top of the tree ``name`` of ``packages``: the Debian mirror for a
    container without internet. ``wanted`` may name a .deb file (its dependencies are taken, not
    the file). Cached under ``.cache/apt-repo/`` keyed by suite, tree and what is wanted."""
    tarball = rootfs_tarball(name, packages, suite)
    parts = []
    for w in sorted(wanted):
        if w.endswith(".deb"):
            depends = subprocess.run(
                ["dpkg-deb", "-f", w, "Depends"], capture_output=True, text=True, check=True
            ).stdout.strip()
            parts.append(f"deps-of({depends})")
        else:
            parts.append(w)
    key = hashlib.sha256(f"{tarball} {parts}".encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "apt-repo", f"{suite}-{key}")
    if os.path.isdir(path):
        return path
    work = f"{path}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    root = _unpack(tarball, os.path.join(work, "root"))
    names = []
    for w in wanted:
        if w.endswith(".deb"):
            shutil.copy(w, os.path.join(root, "srv"))
            names.append("/srv/" + os.path.basename(w))
        else:
            names.append(w)
    run_in(root, "apt-get", "update", "-qq")
    run_in(
        root, "apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends", *names
    )
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    archives = os.path.join(root, "var/cache/apt/archives")
    for f in os.listdir(archives):
        if f.endswith(".deb"):
            shutil.move(os.path.join(archives, f), repo)
    packages_file = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    with open(os.path.join(repo, "Packages"), "wb") as f:
        f.write(packages_file)
    digest = hashlib.sha256(packages_file).hexdigest()
    with open(os.path.join(repo, "Release"), "w") as f:
        f.write(f"Suite: {suite}\nDate: {email.utils.formatdate(usegmt=True)}\n")
        f.write(f"SHA256:\n {digest} {len(packages_file)} Packages\n")
    shutil.rmtree(root)
    os.rename(repo, path) if not os.path.isdir(path) else None
    shutil.rmtree(work, ignore_errors=True)
    return path


def run_in(
    root: str,
    *cmd: str,
    timeout: float = 300,
    check: bool = True,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the tree with systemd-nspawn (not booted): real /proc, /dev, /sys."""
    full = [
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        "--console=pipe",
        "-D",
        root,
        *args,
        "--setenv=PATH=" + DEBIAN_PATH,
        "--setenv=LANG=C.UTF-8",
        "--setenv=DEBIAN_FRONTEND=noninteractive",
        "--",
        *cmd,
    ]
    out = subprocess.run(
        full, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} in {root}: exit {out.returncode}\n{out.stdout[-3000:]}\n"
            f"{out.stderr[-3000:]}"
        )
    return out


def install_deb(root: str, deb: str, apt: bool = False, extra: Sequence[str] = ()) -> None:
    """Install the .deb in the tree: with dpkg (dependencies present) or apt-get (resolved)."""
    shutil.copy(deb, os.path.join(root, "srv", os.path.basename(deb)))
    inside = "/srv/" + os.path.basename(deb)
    if apt:
        run_in(root, "apt-get", "update", "-qq")
        run_in(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *extra, inside)
    else:
        run_in(root, "dpkg", "-i", *extra, inside)


class Machine:
    """A tree booted with systemd as PID 1 in systemd-nspawn."""

    def __init__(self, root: str, nspawn: subprocess.Popen, leader: int, log: str) -> None:
        self.root = root
        self.nspawn = nspawn
        self.leader = leader
        self.log = log

    @classmethod
    @contextlib.contextmanager
    def boot(cls, root: str, args: Sequence[str] = (), timeout: float = 60) -> Iterator[Machine]:
        log = os.path.join(os.path.dirname(root.rstrip("/")), "nspawn.log")
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "--register=no",
                    "--keep-unit",
                    "--console=pipe",
                    "-D",
                    root,
                    *args,
                    "-b",
                ],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        machine = None
        try:

            def leader() -> int | None:
                if proc.poll() is not None:
                    raise AssertionError(f"nspawn exited {proc.returncode}: {_tail(log)}")
                out = subprocess.run(
                    ["pgrep", "-P", str(proc.pid), "-x", "systemd"], capture_output=True, text=True
                )
                return int(out.stdout.split()[0]) if out.stdout.strip() else None

            pid = wait_for(leader, timeout=timeout, interval=0.1, what="container PID 1")
            machine = cls(root, proc, pid, log)
            machine.wait_running(timeout)
            yield machine
        finally:
            if machine is not None and proc.poll() is None:
                machine.sh("systemctl", "poweroff", "--no-block", check=False)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def sh(
        self, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess:
        """Run a command inside the booted machine (all its namespaces); ``input``: its stdin
        (e.g. a command line for ``sh``, which then appears in no process's argv)."""
        out = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "env", "PATH=" + DEBIAN_PATH, *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)}: exit {out.returncode}\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
            )
        return out

    def wait_running(self, timeout: float = 60) -> str:
        def state() -> str | None:
            s = self.sh("systemctl", "is-system-running", check=False).stdout.strip()
            return s if s in ("running", "degraded") else None

        return wait_for(state, timeout=timeout, interval=0.1, what="systemd to finish booting")

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.sh("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        return self.sh("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout

    def read(self, path: str) -> str:
        return self.sh("cat", path).stdout

    def write(self, path: str, text: str) -> None:
        """Write a file from inside (host writes to the machine's /run are invisible)."""
        subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "sh", "-c", f"cat > '{path}'"],
            input=text,
            text=True,
            check=True,
            timeout=30,
        )

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition"):
        return wait_for(predicate, timeout=timeout, interval=0.2, what=what)


def _tail(path: str, n: int = 3000) -> str:
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        return f.read()[-n:]
    return ""


@functools.cache
def build_rpm() -> tuple[str, str]:
    """Paths of the noarch .rpm and the .src.rpm, built from this checkout (once per test run)."""
    out = subprocess.run(
        [os.path.join(REPO, "packaging", "build-rpm.sh"), os.path.join(BUILT, "rpm")],
        capture_output=True,
        text=True,
        env=debian_env(),
        timeout=600,
    )
    assert out.returncode == 0, f"build-rpm.sh failed:\n{out.stdout}\n{out.stderr}"
    paths = out.stdout.split()
    return next(p for p in paths if p.endswith(".noarch.rpm")), next(
        p for p in paths if p.endswith(".src.rpm")
    )
