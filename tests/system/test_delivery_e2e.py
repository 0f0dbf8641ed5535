"""End to end in a real systemd: a Debian 12 tree booted in systemd-nspawn with k3snode's .deb
installed (its hardened unit unchanged), a stub K3s behind a unit like the one K3s's installer
writes, and a fake AWS metadata service answering at 169.254.169.254 in a network namespace of its
own, wired to the machine's. Everything is observed the way an operator would: ``systemctl show``,
``systemctl status``, the journal, and the stub's record of each K3s start with the config it saw.

The scenario runs in order on one boot (each test builds on the previous one's state):
ready before K3s's first start -> status line -> a metadata change gives exactly one K3s restart
-> a hung k3snode is killed by the watchdog and restarted, K3s untouched -> reload ->
prepare-image refuses while k3snode runs -> stopping k3snode leaves K3s running -> prepare-image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from debian_tree import BOOT_PACKAGES, Machine, build_deb, have_tools, install_deb, rootfs
from helpers import REPO, NetNS, veth, wait_for

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        not have_tools("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "nsenter"),
        reason="needs systemd-container, mmdebstrap and the packaging tools",
    ),
]

FAKE_IMDS = os.path.join(REPO, "tests", "fakes", "imds.py")
STUBS = os.path.join(REPO, "tests", "stubs")
FIRST, SECOND = "3.120.45.10", "3.120.45.77"

# The node's settings: a server on AWS; short timers so the scenario takes seconds, not minutes.
SETTINGS = """\
[node]
role = "server"
mesh = "none"
[discovery]
provider = "aws"
timeout = 5
[daemon]
debounce = 0.2
poll_interval = 5
confirm_delay = 0.5
min_restart_interval = 1
boot_wait = 30
restart_timeout = 20
[health]
grace = 5
"""
# The operator's drop-in: a short watchdog so the hang test takes seconds.
DROPIN = """\
[Service]
WatchdogSec=3
RestartSec=1
"""


def starts(m: Machine) -> list[dict]:
    """The stub K3s's record: one entry per start, with the config it saw."""
    out = m.sh("cat", "/var/log/stub-k3s.jsonl", check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """The booted machine, its metadata service's state file, and the host-side work dir."""
    work = tmp_path_factory.mktemp("e2e")
    root = rootfs(str(work / "root"), "boot", BOOT_PACKAGES)
    install_deb(root, build_deb())
    shutil.copy(os.path.join(STUBS, "k3s"), os.path.join(root, "usr/local/bin/k3s"))
    os.chmod(os.path.join(root, "usr/local/bin/k3s"), 0o755)
    shutil.copy(os.path.join(STUBS, "k3s.service"), os.path.join(root, "etc/systemd/system"))
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.symlink("/etc/systemd/system/k3s.service", os.path.join(wants, "k3s.service"))
    with open(os.path.join(root, "etc/k3snode/config.toml"), "w") as f:
        f.write(SETTINGS)
    dropin = os.path.join(root, "etc/systemd/system/k3snode.service.d")
    os.makedirs(dropin)
    with open(os.path.join(dropin, "test.conf"), "w") as f:
        f.write(DROPIN)
    state = work / "imds-state.json"
    state.write_text(json.dumps({"ipv4": FIRST, "ipv6": ""}))
    with NetNS.create("k3se") as host, NetNS.create("k3si") as imds:
        veth(host, imds, ["169.254.10.2/16"], ["169.254.169.254/16"])
        log = open(work / "imds.log", "w")  # noqa: SIM115 - closed below
        server = imds.popen(
            [
                sys.executable,
                FAKE_IMDS,
                "--provider",
                "aws",
                "--bind",
                "169.254.169.254:80",
                "--ipv4",
                FIRST,
                "--ipv6",
                "",
                "--state-file",
                str(state),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert "listening on" in server.stdout.readline()
            args = [
                f"--network-namespace-path=/run/netns/{host.name}",
                "--capability=CAP_NET_ADMIN",
            ]
            with Machine.boot(root, args=args) as m:
                yield m, state
        finally:
            server.terminate()
            server.wait(timeout=10)
            log.close()


def test_k3snode_ready_with_the_address_before_k3s_first_starts(node):
    m, _ = node
    wait_for(lambda: starts(m), timeout=60, what="K3s's first start")
    first = starts(m)[0]
    assert first["config"] is not None, "K3s started before k3snode wrote its config"
    assert f"- {FIRST}" in first["config"], first["config"]
    assert first["argv"] == ["server"]
    k3snode = m.show(
        "k3snode.service",
        "ActiveState",
        "ActiveEnterTimestampMonotonic",
        "Type",
        "NRestarts",
        "WatchdogUSec",
    )
    k3s = m.show("k3s.service", "ActiveState", "ExecMainStartTimestampMonotonic")
    assert k3snode["ActiveState"] == "active" and k3s["ActiveState"] == "active"
    assert k3snode["Type"] == "notify" and k3snode["WatchdogUSec"] == "3s"
    # systemd's own clock: k3snode became active (READY=1) before K3s's process was started.
    assert (
        0
        < int(k3snode["ActiveEnterTimestampMonotonic"])
        <= int(k3s["ExecMainStartTimestampMonotonic"])
    )
    assert len(starts(m)) == 1 and k3snode["NRestarts"] == "0"


def test_systemctl_status_shows_the_status_line(node):
    m, _ = node
    text = m.show("k3snode.service", "StatusText")["StatusText"]
    assert FIRST in text, text
    status = m.sh("systemctl", "status", "--no-pager", "k3snode.service", check=False).stdout
    assert f'Status: "{text}"' in status, status
    assert "Active: active (running)" in status
    # The health endpoint answers from inside the sandbox (port 9181 by default).
    metrics = m.sh("curl", "-fsS", "http://127.0.0.1:9181/metrics").stdout
    assert "k3snode_external_address_info{" in metrics and FIRST in metrics, metrics[:2000]
    assert m.sh("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9181/healthz").returncode == 0


def test_metadata_address_change_gives_exactly_one_k3s_restart(node):
    m, state = node
    before = m.show("k3s.service", "MainPID", "NRestarts")
    state.write_text(json.dumps({"ipv4": SECOND, "ipv6": ""}))
    wait_for(lambda: len(starts(m)) >= 2, timeout=60, what="K3s's restart")
    second = starts(m)[1]
    assert f"- {SECOND}" in second["config"] and FIRST not in second["config"]
    after = m.show("k3s.service", "MainPID", "NRestarts", "ActiveState")
    assert after["MainPID"] != before["MainPID"] and after["MainPID"] == str(second["pid"])
    assert after["NRestarts"] == before["NRestarts"]  # restarted by request, not by a crash
    wait_for(
        lambda: SECOND in m.show("k3snode.service", "StatusText")["StatusText"],
        timeout=30,
        what="the status line to show the new address",
    )
    time.sleep(12)  # two more metadata polls with the same answer: nothing more happens
    assert len(starts(m)) == 2, starts(m)
    assert m.show("k3s.service", "ActiveState")["ActiveState"] == "active"


def test_hung_k3snode_is_killed_by_the_watchdog_and_restarted(node):
    m, _ = node
    old = m.show("k3snode.service", "MainPID", "NRestarts")
    k3s_before = m.show("k3s.service", "MainPID")["MainPID"]
    m.sh("sh", "-c", f"kill -STOP {old['MainPID']}")

    def restarted() -> bool:
        now = m.show("k3snode.service", "MainPID", "NRestarts", "ActiveState")
        return (
            now["NRestarts"] == str(int(old["NRestarts"]) + 1)
            and now["ActiveState"] == "active"
            and now["MainPID"] not in ("0", old["MainPID"])
        )

    wait_for(restarted, timeout=60, what="the watchdog restart")
    journal = m.journal("k3snode.service")
    assert "Watchdog timeout" in journal, journal[-2000:]
    assert "Scheduled restart job" in journal
    # The new k3snode finds the config current: K3s is not restarted because k3snode was.
    time.sleep(3)
    assert m.show("k3s.service", "MainPID")["MainPID"] == k3s_before
    assert len(starts(m)) == 2


def test_reload_rereads_settings_in_the_same_process(node):
    m, _ = node
    pid = m.show("k3snode.service", "MainPID")["MainPID"]
    m.sh("systemctl", "reload", "k3snode.service")
    # The daemon may say RELOADING=1 ... READY=1: "reloading" until its pass is done.
    m.wait_for(
        lambda: m.show("k3snode.service", "ActiveState")["ActiveState"] == "active",
        timeout=30,
        what="the reload to finish",
    )
    assert m.show("k3snode.service", "MainPID")["MainPID"] == pid
    assert "Reloaded k3snode.service" in m.journal("k3snode.service")
    assert len(starts(m)) == 2


def test_prepare_image_refuses_while_k3snode_runs(node):
    m, _ = node
    out = m.sh("k3snode", "prepare-image", check=False)
    pid = m.show("k3snode.service", "MainPID")["MainPID"]
    assert out.returncode == 1 and f"k3snode is running (pid {pid})" in out.stderr, out.stderr
    assert m.sh("test", "-e", "/var/lib/k3snode/state.json", check=False).returncode == 0


def test_stopping_k3snode_leaves_k3s_running(node):
    m, _ = node
    k3s_before = m.show("k3s.service", "MainPID", "ActiveState")
    m.sh("systemctl", "stop", "k3snode.service")
    k3snode = m.show("k3snode.service", "ActiveState", "Result")
    assert k3snode == {"ActiveState": "inactive", "Result": "success"}
    time.sleep(1)
    assert m.show("k3s.service", "MainPID", "ActiveState") == k3s_before
    assert len(starts(m)) == 2


def test_prepare_image_after_stopping_k3snode(node):
    """Image capture on this node: K3s still runs, so --k3s is refused; without it k3snode's own
    state goes and K3s's config loses the node's address (K3s itself is left alone)."""
    m, _ = node
    k3s = m.show("k3s.service", "MainPID")["MainPID"]
    refused = m.sh("k3snode", "prepare-image", "--k3s", check=False)
    assert refused.returncode == 1 and f"K3s is running (pid {k3s})" in refused.stderr
    out = m.sh("k3snode", "prepare-image")
    assert "removed /var/lib/k3snode/state.json" in out.stdout
    assert m.sh("ls", "-A", "/var/lib/k3snode").stdout == ""
    config = m.read("/etc/rancher/k3s/config.yaml")
    assert SECOND not in config and "node-external-ip" not in config
    assert "/etc/machine-id" in out.stdout  # listed, not touched
    assert m.show("k3s.service", "MainPID")["MainPID"] == k3s
