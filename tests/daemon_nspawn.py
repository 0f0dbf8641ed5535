"""A container with systemd as PID 1 (systemd-nspawn) in a network namespace of the test's own,
with the checkout bind-mounted read-only at /opt/k3snode. The rootfs is built once by
``tests/system/build-rootfs.sh`` (mmdebstrap) and cached under ``<repo>/.cache/``; each boot uses
``--volatile=overlay``, so nothing a test does persists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from helpers import REPO, wait_for

BUILD_ROOTFS = os.path.join(REPO, "tests", "system", "build-rootfs.sh")


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "mmdebstrap", "zstd", "nsenter") if not shutil.which(t)]


def rootfs() -> str:
    """The extracted rootfs directory (built and extracted on first use)."""
    tarball = subprocess.run(
        [BUILD_ROOTFS], check=True, capture_output=True, text=True
    ).stdout.strip()
    directory = tarball[: -len(".tar.zst")]
    with open(tarball + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(directory, ".extracted")):
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            subprocess.run(
                f"zstd -dc {tarball} | tar -C {directory} --numeric-owner -xf -",
                shell=True,
                check=True,
            )
            open(os.path.join(directory, ".extracted"), "w").close()
    return directory


@dataclass
class Container:
    pid: int  # the container's PID 1 as seen from the host
    proc: subprocess.Popen

    def run(self, *cmd: str, input: str | None = None, check: bool = True, timeout: float = 60):
        out = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *cmd],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: rc={out.returncode}\n{out.stdout}{out.stderr}")
        return out

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("sh", "-c", script, check=check)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        self.run(
            "sh",
            "-c",
            f"mkdir -p $(dirname {path}) && cat > {path} && chmod {mode} {path}",
            input=text,
        )

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, "--property=" + ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@contextlib.contextmanager
def boot(netns: str, log_path: str) -> Iterator[Container]:
    root = rootfs()
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            "systemd-nspawn", "-q", "-D", root, "--register=no", "--keep-unit",
            "--console=pipe", "--volatile=overlay", f"--network-namespace-path=/run/netns/{netns}",
            f"--bind-ro={REPO}:/opt/k3snode", "-b",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    pid = None
    try:

        def pid1():
            out = subprocess.run(
                ["pgrep", "-P", str(proc.pid), "-x", "systemd"], capture_output=True, text=True
            )
            return int(out.stdout.split()[0]) if out.stdout.strip() else None

        pid = wait_for(pid1, 30, interval=0.1, what="the container's systemd")
        c = Container(pid, proc)

        def booted():
            st = c.run("systemctl", "is-system-running", check=False).stdout.strip()
            return st in ("running", "degraded")

        wait_for(booted, 60, interval=0.2, what="the container to boot")
        yield c
    finally:
        if proc.poll() is None and pid is not None:
            with contextlib.suppress(Exception):
                subprocess.run(
                    ["nsenter", "-t", str(pid), "-a", "systemctl", "poweroff"], timeout=10
                )
        if proc.poll() is None:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        time.sleep(0.1)
