"""The systemd branch of bring-up under a real systemd: the host's own /usr booted with systemd as
PID 1 in ``systemd-nspawn --volatile=yes`` (a throwaway root, no image to build), a
``tailscaled.service`` running the stub daemon, and ``k3snode apply`` run inside; k3snode must
``systemctl enable --now tailscaled`` and then log in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import yaml
from helpers import REPO, unique_name
from tailscale_stub import KEY, TailscaleStub, write_settings

pytestmark = pytest.mark.system

UNIT = """[Unit]
Description=Tailscale node agent (test stub)
[Service]
Environment=TAILSCALE_STUB_DIR={stubdir}
ExecStart={bin}/tailscaled --state=/var/lib/tailscale/tailscaled.state
[Install]
WantedBy=multi-user.target
"""


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("systemd-nspawn") or not os.path.exists("/usr/lib/systemd/systemd"):
        return "needs systemd-nspawn and systemd"
    probe = subprocess.run(["/usr/bin/python3", "-c", "import yaml"], capture_output=True)
    if probe.returncode != 0:
        return "needs /usr/bin/python3 with PyYAML (python3-yaml)"
    return None


class Container:
    """The host's /usr, booted with systemd as PID 1 on a tmpfs root; ``root`` bound rw."""

    def __init__(self, root):
        self.root = root
        self.log = open(root / "nspawn.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", "/", "--volatile=yes", "--register=no", "--keep-unit",
             f"--machine={unique_name('k3snts')}", "--console=pipe",
             f"--bind-ro={REPO}", f"--bind={root}", "-b"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.pid1 = self._find_pid1()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise AssertionError(f"container did not boot (state {state!r})")

    def _find_pid1(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-x", "systemd"],
                                 capture_output=True, text=True)  # fmt: skip
            if out.stdout.strip():
                return int(out.stdout.split()[0])
            if self.proc.poll() is not None:
                raise AssertionError((self.root / "nspawn.log").read_text())
            time.sleep(0.1)
        raise AssertionError("no systemd in the container")

    def run(self, *cmd: str, check: bool = True, env: dict[str, str] | None = None):
        prefix = ["nsenter", "-t", str(self.pid1), "-a"]
        if env:
            prefix += ["env", *(f"{k}={v}" for k, v in env.items())]
        res = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"{cmd}: {res.returncode} {res.stdout} {res.stderr}")
        return res

    def stop(self) -> None:
        self.run("systemctl", "poweroff", check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def container(tmp_path):
    reason = _usable()
    if reason:
        pytest.skip(reason)
    c = Container(tmp_path)
    yield c
    c.stop()


def test_apply_enables_and_starts_tailscaled_with_systemd(container, tmp_path):
    stub = TailscaleStub.create(tmp_path)
    stub.control(keys={KEY: "ok"})  # running iff tailscaled runs
    container.run("sh", "-c", f"cat > /etc/systemd/system/tailscaled.service <<'EOF'\n"
                  f"{UNIT.format(stubdir=stub.dir, bin=stub.bin)}EOF")  # fmt: skip
    container.run("systemctl", "daemon-reload")
    assert container.run("systemctl", "is-enabled", "tailscaled", check=False).stdout.strip() == (
        "disabled"
    )
    cfg = write_settings(tmp_path)
    env = {"PATH": f"{stub.bin}:/usr/bin:/bin", "TAILSCALE_STUB_DIR": str(stub.dir),
           "PYTHONPATH": REPO}  # fmt: skip
    res = container.run("/usr/bin/python3", "-m", "k3snode", "apply", "--config", str(cfg),
                        check=False, env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "enabled and started tailscaled.service" in res.stderr
    assert container.run("systemctl", "is-enabled", "tailscaled").stdout.strip() == "enabled"
    assert container.run("systemctl", "is-active", "tailscaled").stdout.strip() == "active"
    (daemon,) = stub.calls("tailscaled")
    assert daemon["argv"] == ["--state=/var/lib/tailscale/tailscaled.state"]  # the unit's, not ours
    assert "up" in stub.subcommands()
    conf = yaml.safe_load((tmp_path / "etc/rancher/k3s/config.yaml").read_text())
    assert conf["node-external-ip"] == ["100.64.0.5", "fd7a:115c:a1e0::5"]
    assert KEY not in res.stdout + res.stderr
