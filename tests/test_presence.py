"""presence.Presence: which files exist, from directory listings — and no failing system call
for a missing file or directory (strace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, clean_env, have

from k3snode.presence import Presence


def test_answers_as_the_file_system(tmp_path):
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/k3s").write_text("K3S_CONFIG_FILE=/x\n")
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "etc")
    p = Presence()
    assert p.exists(str(tmp_path / "etc/default/k3s"))
    assert p.exists(str(tmp_path / "link/default/k3s"))  # through a symbolic link, as open would
    assert p.exists(str(tmp_path / "etc/default/"))
    for missing in ("etc/sysconfig/k3s", "etc/default/k3s-agent", "nope/a/b/c", "file/below"):
        assert not p.exists(str(tmp_path / missing)), missing
    assert p.exists("/") and p.exists("/etc")
    # a listing is one look: what appears later is seen by the next Presence
    (tmp_path / "etc/default/k3s-agent").write_text("")
    assert not p.exists(str(tmp_path / "etc/default/k3s-agent"))
    assert Presence().exists(str(tmp_path / "etc/default/k3s-agent"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any directory")
def test_an_unlistable_directory_is_tried_not_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "f").write_text("")
    locked.chmod(0o311)  # searchable, not listable
    try:
        assert Presence().exists(str(locked / "f")) and Presence().exists(str(locked / "g"))
    finally:
        locked.chmod(0o755)


def test_missing_files_cost_no_failing_syscall(tmp_path):
    if not have("strace"):
        pytest.skip("needs strace")
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/k3s").write_text("")
    paths = ["etc/default/k3s", "etc/sysconfig/k3s", "etc/rancher/k3s/config.yaml.d",
             "etc/systemd/system/k3s.service.env", "usr/lib/systemd/system/k3s.service"]  # fmt: skip
    trace = tmp_path / "trace"
    script = (
        "import json, sys\nfrom k3snode.presence import Presence\n"
        "p = Presence()\nprint('k3snode-begin', file=sys.stderr, flush=True)\n"
        "got = [p.exists(sys.argv[1] + '/' + q) for q in sys.argv[2:]]\n"
        "print('k3snode-end', file=sys.stderr, flush=True)\nprint(json.dumps(got))\n"
    )
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), sys.executable, "-c", script,
                        str(tmp_path), *paths], capture_output=True, text=True,
                       env=clean_env(PYTHONPATH=REPO))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [True, False, False, False, False]
    lines = trace.read_text().splitlines()
    begin = next(i for i, ln in enumerate(lines) if "k3snode-begin" in ln)
    end = next(i for i, ln in enumerate(lines) if "k3snode-end" in ln)
    traced = lines[begin + 1 : end]
    assert any("getdents64(" in ln for ln in traced)  # it did look
    assert [ln for ln in traced if " = -1 E" in ln] == []
