"""systemd/k3snode.service: what it promises, checked by systemd's own tools.

``systemd-analyze verify`` must pass with nothing on stderr (non-fatal problems only show there),
and the exposure ``systemd-analyze security --offline=yes`` reports is the one documented in
docs/delivery.md, where every permission the unit keeps has its reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

from k3snode.config.model import DEFAULT_CONFIG
from k3snode.config.schema import spec as setting_spec

UNIT = os.path.join(REPO, "systemd", "k3snode.service")
DOCS = os.path.join(REPO, "docs", "delivery.md")
needs_analyze = pytest.mark.skipif(
    not shutil.which("systemd-analyze"), reason="systemd-analyze not installed"
)


def entries(path: str = UNIT) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat)."""
    out, section = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


def values(section: str, key: str) -> list[str]:
    return [v for s, k, v in entries() if s == section and k == key]


def words(section: str, key: str) -> set[str]:
    return {w for v in values(section, key) for w in v.split()}


def test_ordering_before_k3s_after_network_and_tailscale():
    assert words("Unit", "Before") >= {"k3s.service", "k3s-agent.service"}
    assert words("Unit", "After") >= {"network-online.target", "tailscaled.service"}
    assert "network-online.target" in words("Unit", "Wants")
    # Ordering only: K3s must not stop or fail because k3snode does.
    for key in ("Requires", "BindsTo", "PartOf", "Requisite"):
        assert not values("Unit", key), key


def test_notify_watchdog_restart():
    assert values("Service", "Type") == ["notify"]
    assert values("Service", "NotifyAccess") == ["main"]
    assert values("Service", "ExecStart") == ["/usr/bin/k3snode run"]
    assert values("Service", "Restart") == ["on-failure"]
    # A settings mistake (exit 2) is not retried; a reload checks the settings before SIGHUP.
    assert values("Service", "RestartPreventExitStatus") == ["2"]
    assert values("Service", "ExecReload") == ["/usr/bin/k3snode reload --pid $MAINPID"]
    assert int(values("Service", "WatchdogSec")[0]) >= 10
    # Fixed ceilings on fds and threads (issue 15, finding 1).
    assert 256 <= int(values("Service", "LimitNOFILE")[0]) <= 65536
    assert 64 <= int(values("Service", "TasksMax")[0]) <= 4096
    assert values("Install", "WantedBy") == ["multi-user.target"]


def _writable() -> list[str]:
    dirs = [f"/etc/{d}" for d in words("Service", "ConfigurationDirectory")]
    dirs += [f"/var/lib/{d}" for d in words("Service", "StateDirectory")]
    dirs += [f"/run/{d}" for d in words("Service", "RuntimeDirectory")]
    dirs += [w.lstrip("-") for w in words("Service", "ReadWritePaths")]
    return dirs


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def test_every_default_path_k3snode_writes_is_writable_and_nothing_more():
    assert values("Service", "ProtectSystem") == ["strict"]
    writable = _writable()
    for section, key, is_dir in (
        ("paths", "state_dir", True),
        ("paths", "run_dir", True),
        ("k3s", "config", False),
        ("underlay", "private_key_file", False),
    ):
        path = setting_spec(section, key).default
        target = path if is_dir else os.path.dirname(path)
        assert _under(target, writable), f"[{section}] {key} default {path} is read-only"
    # k3snode only reads its settings; /etc stays read-only apart from K3s's config directory.
    assert not _under(os.path.dirname(DEFAULT_CONFIG), writable)
    assert sorted(writable) == [
        "/etc/rancher/k3s",
        "/run/k3snode",
        "/run/wireguard",
        "/var/lib/k3snode",
    ]


def test_capabilities_only_net_admin():
    assert values("Service", "CapabilityBoundingSet") == ["CAP_NET_ADMIN"]
    assert values("Service", "NoNewPrivileges") == ["yes"]
    assert not values("Service", "User"), "root: writes K3s's root-owned config, asks systemd"


def _with_man(tmp_path) -> dict[str, str]:
    """An environment whose MANPATH holds the generated k3snode(1), so Documentation= resolves."""
    man1 = tmp_path / "man" / "man1"
    man1.mkdir(parents=True)
    page = subprocess.run(
        [sys.executable, os.path.join(REPO, "packaging", "manpage.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (man1 / "k3snode.1").write_text(page)
    return {**os.environ, "MANPATH": str(tmp_path / "man"), "SYSTEMD_LOG_COLOR": "0"}


def _verify(tmp_path, text: str) -> subprocess.CompletedProcess:
    """Verify a copy of the unit whose ExecStart points at an executable that exists here."""
    d = tmp_path / "units"
    d.mkdir(exist_ok=True)
    exe = tmp_path / "bin" / "k3snode"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    (d / "k3snode.service").write_text(text.replace("/usr/bin/k3snode", str(exe)))
    return subprocess.run(
        ["systemd-analyze", "verify", str(d / "k3snode.service")],
        capture_output=True,
        text=True,
        env=_with_man(tmp_path),
    )


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path):
    with open(UNIT, encoding="utf-8") as f:
        text = f.read()
    assert text.count("/usr/bin/k3snode") == 2  # ExecStart and ExecReload, both replaced below
    out = _verify(tmp_path, text)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


@needs_analyze
def test_verify_check_sees_non_fatal_mistakes(tmp_path):
    """The check above can fail: systemd only warns about an unknown key, with rc 0."""
    with open(UNIT, encoding="utf-8") as f:
        text = f.read().replace("[Service]\n", "[Service]\nProtectSystm=strict\n")
    out = _verify(tmp_path, text)
    assert out.returncode == 0
    assert "Unknown key" in out.stderr and "ProtectSystm" in out.stderr


def security() -> tuple[float, list[str]]:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", UNIT],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    score = float(re.search(r"Overall exposure level for k3snode.service: ([0-9.]+)", text)[1])
    kept = re.findall(r"^✗ (\S+)", text, re.M)
    return score, kept


@needs_analyze
def test_exposure_is_low_and_documented_with_a_reason_for_each_permission():
    score, kept = security()
    assert score <= 2.0, f"exposure {score}: the unit lost hardening"
    with open(DOCS, encoding="utf-8") as f:
        docs = f.read()
    m = re.search(r"exposure\s+\*\*([0-9.]+)\*\*", docs)
    assert m, "docs/delivery.md must state the exposure as **N.N**"
    assert float(m[1]) == score, "update the exposure in docs/delivery.md"
    table = docs.split("<!-- unit-exposure:begin -->", 1)[1].split("<!-- unit-exposure:end -->")[0]
    table = table.replace("\\|", "|")  # Markdown escapes | inside a table cell
    for item in kept:
        assert f"`{item}`" in table, f"docs/delivery.md: no reason given for {item}"
