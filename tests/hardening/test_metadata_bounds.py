"""Finding 3: metadata answers are parsed with bounds (no alias bombs, no RecursionError).

``k3snode detect`` runs as a real process in its own network namespace against a real HTTP
server answering hostile documents; its peak RSS and run time are measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import NetNS, free_port
from measure import Measured, k3snode, measure

from k3snode import bounded

HERE = os.path.dirname(__file__)
SEEDS = os.path.join(HERE, "seeds")

# A "billion laughs" of 330 bytes: 9**9 nodes once expanded, used as the public IPv4.
BOMB = (
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    + "public-ipv4: *i\n"
)
DEEP_YAML = "public-ipv4: 5.75.1.2\nx: " + "[" * 900 + "]" * 900 + "\n"
DEEP_JSON = '{"droplet_id": 1, "x": ' + "[" * 50000 + "]" * 50000 + "}"


def _detect(ns: NetNS, provider: str, body: str, tmp) -> Measured:
    body_file = str(tmp / "body")
    with open(body_file, "w") as f:
        f.write(body)
    port = free_port()
    server = ns.popen(
        [sys.executable, os.path.join(HERE, "hostile_server.py"), str(port), "plain", body_file],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        return measure(
            k3snode(
                "detect",
                "--provider",
                provider,
                "--metadata-endpoint",
                f"http://127.0.0.1:{port}",
                "--config",
                "/dev/null",
            ),
            netns=ns.name,
        )
    finally:
        server.kill()
        server.wait()


@pytest.mark.netns
@pytest.mark.parametrize(
    "provider,body,reason",
    [
        ("hetzner", BOMB, "nodes once aliases are expanded"),
        ("hetzner", DEEP_YAML, "nested deeper"),
        ("digitalocean", DEEP_JSON, "nested deeper"),
    ],
    ids=["yaml-alias-bomb", "yaml-deep", "json-deep"],
)
def test_hostile_metadata_documents_cost_little_and_fail_in_one_line(
    provider, body, reason, tmp_path
):
    with NetNS.create() as ns:
        m = _detect(ns, provider, body, tmp_path)
    print(f"{provider} {len(body)} bytes: exit {m.returncode}, RSS {m.rss_kib} KiB, {m.seconds}s")
    assert m.returncode == 1, m.output
    assert "Traceback" not in m.output and "MemoryError" not in m.output, m.output
    assert reason in m.output, m.output
    assert m.rss_kib < 120 * 1024, f"peak RSS {m.rss_kib} KiB"
    assert m.seconds < 10, f"{m.seconds}s: longer than the discovery deadline"


def test_bounds_accept_ordinary_documents_with_anchors():
    assert bounded.load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert bounded.load_json(b'{"a": "[[[[", "b": [{"c": "\\"]]"}]}') == {
        "a": "[[[[",
        "b": [{"c": '"]]'}],
    }


def test_alias_depth_counts_after_expansion():
    ten = "[" * 10 + "{}" + "]" * 10
    doc = f"a: &a {ten}\nb: &b [[[[[[[[[[*a]]]]]]]]]]\nc: &c [[[[[[[[[[*b]]]]]]]]]]\n"
    doc += (
        "d: &d [[[[[[[[[[*c]]]]]]]]]]\ne: &e [[[[[[[[[[*d]]]]]]]]]]\nf: &f [[[[[[[[[[*e]]]]]]]]]]\n"
    )
    doc += "g: [[[[[[[[[[*f]]]]]]]]]]\n"
    bounded.check_yaml(doc.rsplit("g:", 1)[0])  # 61 levels: fine
    with pytest.raises(bounded.TooComplex, match="deeper"):
        bounded.check_yaml(doc)


def test_seed_corpus_of_hostile_metadata_is_refused_quickly():
    names = sorted(os.listdir(SEEDS))
    assert names, "the checked-in corpus exists"
    for name in names:
        if not name.startswith("metadata-"):
            continue
        with open(os.path.join(SEEDS, name), "rb") as f:
            raw = f.read()
        started = time.process_time()
        with pytest.raises((bounded.TooComplex, ValueError)):
            if name.endswith(".json"):
                bounded.load_json(raw)
            else:
                import yaml

                try:
                    bounded.load_yaml(raw.decode())
                except yaml.YAMLError as e:
                    raise ValueError(str(e)) from None
        assert time.process_time() - started < 5, name
