"""``/metrics``: the gauges come from one snapshot per scrape (a real HTTP scrape beside a thread
that keeps replacing the snapshot never sees a gauge missing or two reports mixed), the counters,
the bounded failure labels, and prometheus-client imported only after READY=1."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request

import pytest
from helpers import clean_env
from prometheus_client.parser import text_string_to_metric_families

from k3snode.health.checks import Observation, PeerHealth
from k3snode.health.metrics import Metrics, failure_reason, peer_metrics
from k3snode.health.model import HealthModel
from k3snode.health.server import HealthServer

GAUGES = {
    "k3snode_external_address_info",
    "k3snode_last_change_timestamp_seconds",
    "k3snode_k3s_unit_active",
    "k3snode_health_check_ok",
    "k3snode_healthy",
    "k3snode_wireguard_peer_handshake_age_seconds",
    "k3snode_wireguard_peer_stale",
    "k3snode_wireguard_peer_receive_bytes",
    "k3snode_wireguard_peer_transmit_bytes",
    "k3snode_tailscale_peer_online",
    "k3snode_registration_published_info",
    "k3snode_registration_last_update_timestamp_seconds",
    "k3snode_registration_last_update_ok",
}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric family name -> its samples (labels, value), parsed by prometheus-client's parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name, []).extend((dict(s.labels), s.value) for s in fam.samples)
    return out


def report(tag: str, n: int) -> dict:
    """The snapshot fields one daemon report would publish; ``tag`` marks every part of it."""
    model = HealthModel(grace=0, wall=lambda: 1000.0)
    for i in range(3):
        model.observe(Observation(f"{tag}-check-{i}", i != 1, "detail"))
    wg = tuple(
        PeerHealth("flannel-wg", f"{tag}-key-{i}", None, 990.0, 1, 2, name=f"{tag}-{i}")
        for i in range(n)
    )
    ts = (PeerHealth("tailscale0", f"{tag}-node", online=True, name=f"{tag}-ts"),)
    return {
        "health": model.snapshot(),
        "addresses": ((f"{tag}.v4", "ipv4", "interface"), (f"{tag}.v6", "ipv6", "metadata")),
        "peers": (
            Observation("wireguard:flannel-wg", True, "", peers=wg),
            Observation("tailscale", True, "", peers=ts),
        ),
        "peers_at": 1000.0,
        "registration": {
            "name": f"{tag}.example.net",
            "published": [f"{tag}.a", f"{tag}.b"],
            "last_update": {"time": 999.0, "ok": True, "detail": ""},
        },
        "k3s_active": True,
        "last_change": 900.0,
    }


def test_one_report_renders_every_gauge():
    metrics = Metrics()
    metrics.update(**report("a", 2))
    got = samples(metrics.render().decode())
    assert set(got) >= GAUGES
    assert got["k3snode_external_address_info"] == [
        ({"address": "a.v4", "family": "ipv4", "source": "interface"}, 1.0),
        ({"address": "a.v6", "family": "ipv6", "source": "metadata"}, 1.0),
    ]
    assert sorted(got["k3snode_health_check_ok"], key=lambda s: s[0]["check"]) == [
        ({"check": "a-check-0"}, 1.0),
        ({"check": "a-check-1"}, 0.0),
        ({"check": "a-check-2"}, 1.0),
    ]
    assert got["k3snode_healthy"] == [({}, 0.0)]
    assert got["k3snode_k3s_unit_active"] == [({}, 1.0)]
    assert got["k3snode_last_change_timestamp_seconds"] == [({}, 900.0)]
    assert got["k3snode_wireguard_peer_handshake_age_seconds"] == [
        ({"interface": "flannel-wg", "peer": f"a-key-{i}", "name": f"a-{i}"}, 10.0) for i in (0, 1)
    ]
    assert got["k3snode_wireguard_peer_transmit_bytes"][0][1] == 2.0
    assert got["k3snode_tailscale_peer_online"] == [({"peer": "a-node", "name": "a-ts"}, 1.0)]
    assert got["k3snode_registration_published_info"] == [
        ({"name": "a.example.net", "address": "a.a"}, 1.0),
        ({"name": "a.example.net", "address": "a.b"}, 1.0),
    ]
    assert got["k3snode_registration_last_update_ok"] == [({}, 1.0)]
    metrics.update(registration=None, k3s_active=False)
    got = samples(metrics.render().decode())
    assert got["k3snode_registration_published_info"] == [], "stopped publishing: no sample"
    assert got["k3snode_k3s_unit_active"] == [({}, 0.0)]
    assert len(got["k3snode_external_address_info"]) == 2, "the rest of the snapshot stays"


def test_before_the_first_report_gauges_have_no_made_up_values_and_counters_count():
    metrics = Metrics()
    metrics.config_writes.inc(2)
    metrics.restarts.labels("restarted").inc()
    metrics.discovery_failures.labels("timeout").inc()
    metrics.discovery_seconds.observe(0.3)
    got = samples(metrics.render().decode())
    assert set(got) >= GAUGES, "every family is declared (HELP, TYPE) from the start"
    assert all(got[name] == [] for name in GAUGES)
    assert ({}, 2.0) in got["k3snode_config_writes"]
    assert ({"outcome": "restarted"}, 1.0) in got["k3snode_k3s_restarts"]
    assert ({"reason": "timeout"}, 1.0) in got["k3snode_discovery_failures"]
    assert ({}, 1.0) in got["k3snode_discovery_duration_seconds"]  # _count
    with pytest.raises(TypeError):
        metrics.update(no_such_gauge=1)


def test_a_scrape_during_updates_sees_one_whole_report():
    """Real HTTP scrapes against the real server while another thread publishes report after
    report (as the daemon's loop does beside the server's threads): every scrape has every gauge,
    and all of them from the same report."""
    metrics = Metrics()
    model = HealthModel(grace=10)
    reports = [report("a", 3), report("b", 4)]
    metrics.update(**reports[0])
    server = HealthServer("127.0.0.1", 0, model.snapshot, metrics.render)
    server.start()
    stop = threading.Event()
    published = [0]

    def publish() -> None:
        while not stop.is_set():
            published[0] += 1
            metrics.update(**reports[published[0] % 2])

    publisher = threading.Thread(target=publish)
    publisher.start()
    seen = set()
    try:
        for _ in range(150):
            url = f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as r:
                got = samples(r.read().decode())
            addresses = got["k3snode_external_address_info"]
            assert len(addresses) == 2, addresses
            tag = addresses[0][0]["address"].split(".")[0]
            seen.add(tag)
            n = 3 if tag == "a" else 4
            checks = [s[0]["check"] for s in got["k3snode_health_check_ok"]]
            assert sorted(checks) == [f"{tag}-check-{i}" for i in range(3)], (tag, checks)
            assert got["k3snode_healthy"] == [({}, 0.0)]
            for name in (
                "k3snode_wireguard_peer_handshake_age_seconds",
                "k3snode_wireguard_peer_stale",
                "k3snode_wireguard_peer_receive_bytes",
                "k3snode_wireguard_peer_transmit_bytes",
            ):
                peers = [s[0]["peer"] for s in got[name]]
                assert peers == [f"{tag}-key-{i}" for i in range(n)], (name, tag, peers)
            assert got["k3snode_tailscale_peer_online"] == [
                ({"peer": f"{tag}-node", "name": f"{tag}-ts"}, 1.0)
            ]
            published_info = [s[0]["address"] for s in got["k3snode_registration_published_info"]]
            assert published_info == [f"{tag}.a", f"{tag}.b"]
    finally:
        stop.set()
        publisher.join()
        server.stop()
    assert seen == {"a", "b"}, "the scrapes saw both reports, so they ran during the updates"
    assert published[0] > 150


@pytest.mark.parametrize(
    ("error", "label"),
    [
        ("no external address found", "no-address"),
        ("aws: metadata timed out after 2s", "timeout"),
        ("cannot read interfaces: permission denied", "interfaces"),
        ("tailscale is not running (BackendState 'Stopped')", "tailscale"),
        ("something odd", "other"),
    ],
)
def test_failure_reasons_are_a_small_set(error, label):
    assert failure_reason(error) == label


def test_peer_metrics():
    now = 5_000.0
    obs = [
        Observation("wireguard:flannel-wg", True, "", peers=(
            PeerHealth("flannel-wg", "K1", "192.0.2.1:51820", now - 12.5, 10, 20),
            PeerHealth("flannel-wg", "K2", None, None, stale=True),
        )),
        Observation("tailscale", True, "", peers=(PeerHealth("tailscale0", "n", online=True),)),
        Observation("underlay", True, "", peers=(PeerHealth("ul", "K3", None, now + 3, name="cp-2"),)),
    ]  # fmt: skip
    got = peer_metrics(obs, now)
    assert got == [
        ({"interface": "flannel-wg", "peer": "K1", "name": ""},
         {"handshake_age_seconds": 12.5, "stale": 0.0, "rx_bytes": 10.0, "tx_bytes": 20.0}),
        ({"interface": "flannel-wg", "peer": "K2", "name": ""},
         {"handshake_age_seconds": -1.0, "stale": 1.0, "rx_bytes": 0.0, "tx_bytes": 0.0}),
        ({"interface": "ul", "peer": "K3", "name": "cp-2"},  # a clock step back: never negative
         {"handshake_age_seconds": 0.0, "stale": 0.0, "rx_bytes": 0.0, "tx_bytes": 0.0}),
    ]  # fmt: skip


def test_importing_the_daemon_and_health_imports_no_prometheus_client():
    code = (
        "import sys\n"
        "import k3snode.daemon.loop, k3snode.health.metrics\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prometheus_client'"
        " or m in ('k3snode.health.registry', 'k3snode.health.server', 'http.server')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.netns
def test_the_daemon_imports_prometheus_client_and_the_observers_after_ready(tmp_path):
    """A real ``k3snode run`` with ``-X importtime`` (each import is printed as it finishes, on
    the same stream as the log): prometheus-client, the observers' registry and the HTTP server
    come after the ``ready:`` line (the port is bound before it), and /metrics then answers with
    the report's gauges."""
    from daemon_node import make_node
    from helpers import wait_for

    with make_node(tmp_path, health_port=-1, env_extra={"PYTHONPROFILEIMPORTTIME": "1"}) as node:
        node.start()
        wait_for(lambda: "k3snode_healthy 1.0" in node.http("/metrics")[1], 10, what="a report")
        out = node.output().splitlines()
        node.stop()
    ready = next(i for i, line in enumerate(out) if "ready:" in line)

    def imported(module: str) -> int:
        return next(i for i, line in enumerate(out) if line.split("|")[-1].strip() == module)

    assert imported("k3snode.daemon.loop") < ready
    assert imported("prometheus_client") > ready
    assert imported("k3snode.health.registry") > ready
    assert imported("http.server") > ready
    listening = next(i for i, line in enumerate(out) if "health endpoint on" in line)
    assert listening < ready, "the port is bound before READY=1"
