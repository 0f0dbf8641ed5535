"""``k3snode run`` as a real process in a network namespace: addresses change through rtnetlink,
systemd is a real datagram socket, K3s's unit a stub ``systemctl`` that records every call."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from daemon_node import make_node
from helpers import wait_for

pytestmark = pytest.mark.netns


def _fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.split("\n") if "=" in line)


def test_start_writes_config_then_ready_status_watchdog_stopping(tmp_path):
    with make_node(tmp_path, env_extra={"WATCHDOG_USEC": "400000"}) as node:
        node.start(wait_ready=False)
        ready = node.notify.wait("READY=1")
        assert node.external_ips() == ["5.6.7.8"], "config written before READY"
        assert "5.6.7.8 (interface)" in _fields(ready)["STATUS"]
        wait_for(
            lambda: sum("WATCHDOG=1" in m for m in node.notify.drain(0.1)) >= 2,
            5,
            what="two WATCHDOG=1 pings",
        )
        assert node.stop() == 0
        msgs = node.notify.drain(0.2)
        kinds = [m.split("=", 1)[0] for m in msgs]
        assert kinds[0] == "READY", "nothing before READY"
        assert "STOPPING=1" in msgs[-1]
        assert "WATCHDOG" in kinds[1:-1]
        assert [k for k in kinds if k not in ("STATUS", "WATCHDOG")] == ["READY", "STOPPING"]
        status_file = tmp_path / "run/k3snode/status.json"
        assert not status_file.exists(), "a clean stop removes the status file"


def test_address_change_gives_one_restart_with_the_new_config(tmp_path):
    with make_node(tmp_path) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="the start-up restart (config was new)")
        before = len(node.restarts())
        node.addr("add", "9.9.9.9/24")
        node.addr("del", "5.6.7.8/24")
        node.route("replace", "9.9.9.1")
        node.wait_external(["9.9.9.9"])
        wait_for(lambda: len(node.restarts()) == before + 1, 5, what="a restart")
        time.sleep(1.5)  # nothing more happens
        restarts = node.restarts()
        assert len(restarts) == before + 1
        assert restarts[-1]["argv"] == ["restart", "--no-block", "k3s.service"]
        assert "9.9.9.9" in restarts[-1]["config"] and "5.6.7.8" not in restarts[-1]["config"]
        st = node.status_json()
        assert [a["address"] for a in st["addresses"]] == ["9.9.9.9"]
        assert st["last_change"]["from"] == ["5.6.7.8"] and st["last_change"]["to"] == ["9.9.9.9"]
        assert st["last_restart"]["outcome"] == "restarted"
        out = node.output()
        assert "external address changed from 5.6.7.8 to 9.9.9.9" in out
        assert node.stop() == 0


def test_stopped_k3s_is_never_started(tmp_path):
    unit = {"load": "loaded", "active": "inactive", "sub": "dead", "invocation": 1}
    with make_node(tmp_path, unit=unit) as node:
        node.start()
        node.addr("add", "9.9.9.9/24")
        node.addr("del", "5.6.7.8/24")
        node.route("replace", "9.9.9.1")
        node.wait_external(["9.9.9.9"])
        time.sleep(1)
        verbs = {c["argv"][0] for c in node.calls()}
        assert verbs == {"show"}, f"only asked, never started or restarted: {verbs}"
        assert "not restarted" in node.output()
        assert node.status_json()["last_restart"]["outcome"] == "not-running"


def test_k3s_not_installed_gets_config_only(tmp_path):
    with make_node(tmp_path, unit=None) as node:
        node.start()
        assert node.external_ips() == ["5.6.7.8"]
        wait_for(lambda: "not installed" in node.output(), 5, what="not-installed log line")
        assert {c["argv"][0] for c in node.calls()} == {"show"}


def test_new_address_is_confirmed_before_k3s_is_touched(tmp_path):
    """An address that appears and vanishes within the confirm delay changes nothing."""
    with make_node(tmp_path, daemon={"confirm_delay": 2.0}) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        before = node.read_config()
        n = len(node.restarts())
        node.addr("add", "9.9.9.9/24")
        node.addr("del", "5.6.7.8/24")
        node.route("replace", "9.9.9.1")
        wait_for(lambda: "confirming" in node.output(), 5, what="the confirm log line")
        node.addr("add", "5.6.7.8/24")
        node.addr("del", "9.9.9.9/24")
        node.route("replace", "5.6.7.1")
        time.sleep(3)
        assert node.read_config() == before
        assert len(node.restarts()) == n


def test_fifty_flips_give_at_most_one_restart(tmp_path):
    """K3s stopped at start (no start-up restart), running before the flapping: the whole burst
    gives one write and one restart; a second restart would wait 30 s."""
    stopped = {"load": "loaded", "active": "inactive", "sub": "dead", "invocation": 1}
    daemon = {"min_restart_interval": 30, "debounce": 0.5}
    with make_node(tmp_path, unit=stopped, daemon=daemon) as node:
        node.start()
        node.wait_external(["5.6.7.8"], timeout=10)  # the start-up write
        assert node.restarts() == [], "K3s, installed and not running, is not restarted at start"
        assert node.status_json().get("last_restart") is None
        node.set_unit(active="active", sub="running")
        a, b = ("5.6.7.8/24", "5.6.7.1"), ("9.9.9.9/24", "9.9.9.1")
        for i in range(51):  # 51 flips: the last lands on b
            new, old = (b, a) if i % 2 == 0 else (a, b)
            node.addr("add", new[0])
            node.addr("del", old[0])
            node.route("replace", new[1])
            time.sleep(0.04)
        node.wait_external(["9.9.9.9"], timeout=20)
        wait_for(lambda: node.restarts(), 10, what="the restart after settling")
        time.sleep(3)
        assert len(node.restarts()) == 1
        assert node.restarts()[0]["config"].count("9.9.9.9") == 1
        assert node.output().count("external address changed") == 1


def test_restarts_are_rate_limited_and_the_last_config_wins(tmp_path):
    with make_node(tmp_path, daemon={"min_restart_interval": 6, "confirm_delay": 0}) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        n = len(node.restarts())
        for new, old, gw in (
            ("9.9.9.9/24", "5.6.7.8/24", "9.9.9.1"),
            ("8.8.4.4/24", "9.9.9.9/24", "8.8.4.1"),
        ):
            node.addr("add", new)
            node.addr("del", old)
            node.route("replace", gw)
            time.sleep(0.6)
        node.wait_external(["8.8.4.4"])
        assert "deferred" in node.output()
        wait_for(lambda: len(node.restarts()) > n, 12, what="the deferred restart")
        time.sleep(1)
        assert len(node.restarts()) == n + 1
        assert "8.8.4.4" in node.restarts()[-1]["config"]


def test_failing_unit_is_reported_not_restarted_in_a_loop(tmp_path):
    unit = {"load": "loaded", "active": "active", "sub": "running", "invocation": 1}
    with make_node(tmp_path, unit=unit, daemon={"min_restart_interval": 0.5}, grace=0.5) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        node.set_unit(after_restart="failed")
        n = len(node.restarts())
        node.addr("add", "9.9.9.9/24")
        node.addr("del", "5.6.7.8/24")
        node.route("replace", "9.9.9.1")
        wait_for(lambda: len(node.restarts()) == n + 1, 10, what="one restart")
        wait_for(lambda: "K3s restart failed" in node.output(), 5, what="failure logged")
        node.signal(signal.SIGHUP)  # another pass: content unchanged → no restart
        time.sleep(2)
        assert len(node.restarts()) == n + 1
        st = node.status_json()
        assert st["health"]["status"] == "degraded"
        k3s = next(c for c in st["health"]["checks"] if c["check"] == "k3s")
        assert k3s["state"] == "failing" and "failed" in k3s["detail"]
        assert node.status().returncode == 0


def test_slow_unit_times_out_and_is_reported(tmp_path):
    with make_node(tmp_path, daemon={"restart_timeout": 1}) as node:
        node.set_unit(after_restart="slow", slow_for=30)
        node.start()
        wait_for(lambda: "K3s restart timeout" in node.output(), 10, what="timeout reported")
        wait_for(lambda: node.status_json()["last_restart"], 5, what="status updated")
        assert node.status_json()["last_restart"]["outcome"] == "timeout"
        assert len(node.restarts()) == 1


def test_discovery_outage_changes_nothing_then_health_returns(tmp_path):
    with make_node(tmp_path, grace=1.0, health_port=-1) as node:
        node.start()
        before = node.read_config()
        code, body = node.http("/healthz")
        wait_for(lambda: node.http("/healthz")[0] == 200, 10, what="healthy")
        node.route("del", "5.6.7.1")  # no default route: interface discovery finds nothing
        node.signal(signal.SIGHUP)  # the netlink event already asks; SIGHUP makes sure
        wait_for(lambda: node.http("/healthz")[0] == 503, 10, what="degraded after the grace")
        code, body = node.http("/healthz")
        checks = {c["check"]: c for c in json.loads(body)["checks"]}
        assert checks["discovery"]["state"] == "failing"
        assert "no external address" in checks["discovery"]["detail"]
        assert node.read_config() == before, "an outage changes nothing"
        assert "keeping last good state (5.6.7.8)" in node.output()
        node.route("add", "5.6.7.1")
        wait_for(lambda: node.http("/healthz")[0] == 200, 10, what="green again")
        assert node.read_config() == before
        code, metrics = node.http("/metrics")
        assert code == 200
        assert (
            'k3snode_external_address_info{address="5.6.7.8",family="ipv4",source="interface"} 1.0'
            in metrics
        )
        assert 'k3snode_discovery_failures_total{reason="no-address"}' in metrics
        assert "k3snode_k3s_restarts_total" in metrics and "k3snode_k3s_unit_active 1.0" in metrics
        assert "k3snode_discovery_duration_seconds_count" in metrics
        assert "k3snode_config_writes_total 1.0" in metrics


def test_boot_wait_ready_degraded_then_recovers(tmp_path):
    with make_node(
        tmp_path, address=None, mesh="wireguard-native", daemon={"boot_wait": 1.0}
    ) as node:
        node.start(wait_ready=False)
        ready = node.notify.wait("READY=1", timeout=10)
        assert "degraded" in _fields(ready)["STATUS"]
        assert node.read_config() == "", "nothing to write without an address"
        assert node.status_json()["health"]["status"] == "degraded"
        node.addr("add", "5.6.7.8/24")
        node.route("add", "5.6.7.1")
        node.wait_external(["5.6.7.8"])
        wait_for(lambda: node.status_json()["health"]["status"] == "ok", 10, what="ok")


def test_sighup_rereads_settings_and_bad_settings_keep_the_old(tmp_path):
    with make_node(tmp_path) as node:
        node.start()
        node.write_settings('[k3s.options]\n"node-label" = ["zone=a"]\n')
        node.signal(signal.SIGHUP)
        wait_for(lambda: "zone=a" in node.read_config(), 10, what="the new option written")
        node.notify.wait("RELOADING=1")
        node.write_settings("[daemon]\ndebounce = 'soon'\n")
        node.signal(signal.SIGHUP)
        wait_for(lambda: "keeping the previous settings" in node.output(), 10, what="reload error")
        assert node.proc.poll() is None
        assert "zone=a" in node.read_config()
        assert node.stop() == 0


def test_second_daemon_refuses_to_run(tmp_path):
    with make_node(tmp_path) as node:
        node.start()
        out = node.ns.exec(
            "env",
            *[f"{k}={v}" for k, v in node.env().items() if k in ("PYTHONPATH", "PATH")],
            sys.executable,
            "-m",
            "k3snode",
            "run",
            "--config",
            node.settings_file,
            check=False,
        )
        assert out.returncode == 1
        assert "another `k3snode run` is running" in out.stderr


def test_status_without_daemon_says_so(tmp_path):
    with make_node(tmp_path) as node:
        node.write_settings()
        out = node.status()
        assert out.returncode == 1
        assert "k3snode is not running" in out.stderr
        node.start()
        assert node.status().returncode == 0
        node.stop(signal.SIGKILL)
        out = node.status()
        assert out.returncode == 1 and "stale status" in out.stderr


def test_a_managed_key_changed_by_hand_is_restored_and_k3s_restarted_once(tmp_path):
    with make_node(tmp_path, grace=1.0) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        n = len(node.restarts())
        with open(node.config, "w") as f:
            f.write(node.read_config().replace("5.6.7.8", "1.1.1.1"))
        node.wait_external(["5.6.7.8"], timeout=10)
        assert "changed by someone else" in node.output()
        wait_for(lambda: len(node.restarts()) == n + 1, 10, what="one restart")
        time.sleep(1.5)
        assert len(node.restarts()) == n + 1


def test_a_key_the_user_adds_is_kept_and_restarts_nothing(tmp_path):
    with make_node(tmp_path, grace=1.0) as node:
        node.start()
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        n = len(node.restarts())
        with open(node.config, "a") as f:
            f.write("node-label:\n- team=a\n")
        time.sleep(2)  # several health ticks
        node.signal(signal.SIGHUP)  # and a pass, which puts k3snode's block back at the end
        time.sleep(1.5)
        assert "team=a" in node.read_config() and node.external_ips() == ["5.6.7.8"]
        assert len(node.restarts()) == n, "the user's own key is theirs to restart for"
        st = node.status_json()
        assert st["health"]["status"] == "ok", st["health"]


def test_status_reads_well_and_an_unusable_run_dir_is_one_line(tmp_path):
    with make_node(tmp_path) as node:
        node.start()
        out = node.status()
        assert out.returncode == 0
        rows = {
            line.split(":", 1)[0]: line.split(":", 1)[1].strip()
            for line in out.stdout.splitlines()
            if ":" in line and not line.startswith(" ")
        }
        assert rows["addresses"] == "5.6.7.8 (interface)"
        assert rows["state"].startswith("ok; running for ")
        assert rows["K3s"] == "k3s.service is active (running)"
        assert rows["node"].startswith("server, mesh ")
        assert "checks:" in out.stdout and "  discovery " in out.stdout
        node.stop()
        (tmp_path / "blocker").write_text("")
        out = node.ns.exec(
            "env", *[f"{k}={v}" for k, v in node.env().items() if k in ("PYTHONPATH", "PATH")],
            sys.executable, "-m", "k3snode", "run", "--config", node.settings_file,
            "--run-dir", str(tmp_path / "blocker" / "run"), check=False,
        )  # fmt: skip
        assert out.returncode == 2
        assert out.stderr.startswith("k3snode: error: --run-dir: cannot use ")
        assert "Traceback" not in out.stderr


def test_without_netlink_the_poll_timer_finds_the_change(tmp_path):
    with make_node(tmp_path, daemon={"poll_interval": 5, "confirm_delay": 0.2}) as node:
        node.start("--no-netlink")
        node.addr("add", "9.9.9.9/24")
        node.addr("del", "5.6.7.8/24")
        node.route("replace", "9.9.9.1")
        time.sleep(1.5)
        assert node.external_ips() == ["5.6.7.8"], "no netlink: nothing noticed at once"
        node.wait_external(["9.9.9.9"], timeout=10)
        assert "pass requested: address" not in node.output()


def test_dual_stack_an_ipv6_change_alone_restarts_once(tmp_path):
    with make_node(tmp_path) as node:
        node.ns.ip("-6", "addr", "add", "2a01:4f8::5/64", "dev", node.dev, "nodad")
        node.ns.ip("-6", "route", "add", "default", "via", "2a01:4f8::1", "dev", node.dev)
        node.start()
        assert node.external_ips() == ["5.6.7.8", "2a01:4f8::5"]
        wait_for(lambda: node.restarts(), 5, what="start-up restart")
        n = len(node.restarts())
        node.ns.ip("-6", "addr", "add", "2a01:4f8::6/64", "dev", node.dev, "nodad")
        node.ns.ip("-6", "addr", "del", "2a01:4f8::5/64", "dev", node.dev)
        node.ns.ip("-6", "route", "replace", "default", "via", "2a01:4f8::1", "dev", node.dev)
        node.wait_external(["5.6.7.8", "2a01:4f8::6"])
        wait_for(lambda: len(node.restarts()) == n + 1, 10, what="one restart")
        time.sleep(1)
        assert len(node.restarts()) == n + 1
        st = node.status_json()
        assert [a["family"] for a in st["addresses"]] == ["ipv4", "ipv6"]


def test_sigterm_while_a_restart_is_watched_stops_at_once(tmp_path):
    with make_node(tmp_path, daemon={"restart_timeout": 60}) as node:
        node.set_unit(after_restart="slow", slow_for=60)
        node.start()
        wait_for(lambda: node.restarts(), 5, what="the restart being watched")
        t = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - t < 5
        assert "STOPPING=1" in node.notify.drain(0.2)[-1]


def test_a_taken_health_port_is_logged_and_the_daemon_runs_on(tmp_path):
    with make_node(tmp_path, health_port=-1) as node:
        blocker = node.ns.popen(
            [
                sys.executable,
                "-c",
                f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1', {node.health_port})); s.listen(); print('up', flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert blocker.stdout.readline().strip() == "up"
            node.start()
            assert node.external_ips() == ["5.6.7.8"]
            assert f"health endpoint 127.0.0.1:{node.health_port}" in node.output()
            assert "running without it" in node.output()
            assert node.status_json()["health_port"] == 0
        finally:
            blocker.kill()
            blocker.wait()


def test_the_health_endpoint_is_local_only(tmp_path):
    with make_node(tmp_path, health_port=-1) as node:
        node.start()
        assert node.http("/healthz")[0] == 200
        node.router.ip("addr", "add", "5.6.7.1/24", "dev", node.peer)
        probe = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('5.6.7.8', {node.health_port}), timeout=5)\n"
            "    print('open')\n"
            "except ConnectionRefusedError:\n"
            "    print('refused')\n"
        )
        out = node.router.exec(sys.executable, "-c", probe).stdout.strip()
        assert out == "refused", "the node is reachable, the endpoint is not"


def test_the_health_endpoint_on_ipv6_loopback(tmp_path):
    with make_node(tmp_path, health_port=-1, health_listen="::1") as node:
        node.start()
        code = (
            "import urllib.request\n"
            f"print(urllib.request.urlopen('http://[::1]:{node.health_port}/healthz').status)\n"
        )
        assert node.ns.exec(sys.executable, "-c", code).stdout.strip() == "200"


DNS_COUNTER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
n = 0
while True:
    s.recvfrom(4096)
    n += 1
    with open(sys.argv[1] + ".new", "w") as f:
        f.write(str(n))
    __import__("os").replace(sys.argv[1] + ".new", sys.argv[1])
"""


def test_starting_the_health_endpoint_asks_no_dns(tmp_path):
    """On a node with no /etc/hosts entry for itself, binding the endpoint must not send a
    reverse-DNS query (http.server's FQDN lookup stalls start-up while the resolver times out)."""
    count_file = tmp_path / "dns-queries"

    def queries() -> int:
        return int(count_file.read_text()) if count_file.exists() else 0

    with make_node(tmp_path, health_port=-1) as node:
        node.ns.hosts("")  # nothing for 127.0.0.1: a lookup would go to the name server
        with open(f"/etc/netns/{node.ns.name}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        counter = node.ns.popen([sys.executable, "-c", DNS_COUNTER, str(count_file)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert counter.stdout.readline().strip() == "ready"
            # the same lookup http.server would make: proves the counter sees such queries
            node.ns.exec(sys.executable, "-c", "import socket; socket.getfqdn('127.0.0.1')")
            before = wait_for(queries, what="the probe's query")
            node.start()
            assert node.http("/healthz")[0] == 200
            assert queries() == before, "the daemon sent DNS queries while starting"
        finally:
            counter.kill()
            counter.wait()
