"""Finding 4: GCP's long-poll against a misbehaving metadata server (a real process).

The watch loop (``longpoll.start``) runs for a few seconds against each misbehaviour; the
server's request log says how hard it was hit and where the requests went.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import free_port

from k3snode.config.load import load
from k3snode.daemon import longpoll
from k3snode.discovery.errors import MetadataError
from k3snode.discovery.http import Client
from k3snode.discovery.providers import gcp

HERE = os.path.dirname(__file__)
RUN_FOR = 4.0


def _watch(tmp_path, mode: str) -> tuple[list[str], list[str]]:
    port = free_port()
    log = tmp_path / "requests.log"
    body = tmp_path / "body.json"
    body.write_text('[{"accessConfigs": [{"externalIp": "35.1.2.3"}]}]')
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "hostile_server.py"), str(port), mode, str(body),
         str(log)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    changes: list[str] = []
    stop = {"now": False}
    try:
        assert server.stdout.readline().strip() == "ready"
        settings = load(
            None,
            env={},
            overrides={
                ("discovery", "provider"): "gcp",
                ("discovery", "metadata_endpoint"): f"http://127.0.0.1:{port}",
            },
        )
        assert longpoll.start(settings, changes.append, lambda: stop["now"])
        time.sleep(RUN_FOR)
    finally:
        stop["now"] = True
        server.kill()
        server.wait()
    lines = log.read_text().splitlines() if log.exists() else []
    return lines, changes


@pytest.mark.parametrize("mode", ["same-etag", "new-etag", "bad-etag", "redirect", "error"])
def test_a_misbehaving_server_gets_a_few_requests_not_thousands(tmp_path, mode):
    lines, changes = _watch(tmp_path, mode)
    print(f"{mode}: {len(lines)} requests, {len(changes)} changes in {RUN_FOR:.0f}s")
    # Pauses of 1, 2, 4 s (±50 %) after each immediate answer: at most ~6 in 4 s.
    assert 1 <= len(lines) <= 8, lines
    assert len(changes) <= longpoll.MAX_CHANGES_PER_MINUTE
    assert not [line for line in lines if "/elsewhere" in line], "a redirect was followed"
    if mode == "bad-etag":
        assert not [line for line in lines if "last_etag=a" in line], "the bad ETag was sent back"


def test_changes_are_capped_per_minute():
    t = {"now": 0.0}
    pacer = longpoll.Pacer(clock=lambda: t["now"], rand=lambda: 0.5)
    delays = [pacer.change_delay() for _ in range(longpoll.MAX_CHANGES_PER_MINUTE)]
    assert delays == [0.0] * longpoll.MAX_CHANGES_PER_MINUTE
    assert pacer.change_delay() == pytest.approx(60.0)


def test_backoff_doubles_with_jitter_and_resets_after_a_real_wait():
    pacer = longpoll.Pacer(rand=lambda: 0.5)
    assert [pacer.after(0.01, ok=True) for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert pacer.after(30, ok=True) == 0.0
    low = longpoll.Pacer(rand=lambda: 0.0).after(0, ok=False)
    high = longpoll.Pacer(rand=lambda: 0.999).after(0, ok=False)
    assert low == pytest.approx(0.5) and high == pytest.approx(1.499)


def test_an_etag_with_a_space_is_refused_not_kept(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "hostile_server.py"), str(port), "bad-etag"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout.readline().strip() == "ready"
        w = gcp.Watch(Client(gcp.BASE, float("inf"), override=f"http://127.0.0.1:{port}"))
        with pytest.raises(MetadataError, match="invalid ETag"):
            w.wait(1)
        assert w.etag == ""
    finally:
        server.kill()
        server.wait()
