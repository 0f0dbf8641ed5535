"""Discovery in network namespaces, with the production defaults: the fake metadata service at
169.254.169.254:80 (no --metadata-endpoint), interfaces read over real netlink, and proof that bare
metal contacts nothing (listeners on every metadata address + the namespace's TCP/UDP counters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
from fakes import dmi_dir
from fakes.imds import FakeIMDSProcess
from helpers import REPO, NetNS, clean_env, run_k3snode

pytestmark = pytest.mark.netns

IMDS = os.path.join(REPO, "tests", "fakes", "imds.py")
LISTENER = os.path.join(REPO, "tests", "fakes", "listener.py")
METADATA_ADDRS = ("169.254.169.254/32", "169.254.42.42/32", "100.100.100.200/32",
                  "169.254.0.23/32", "fd00:ec2::254/128", "fd00:a9fe:a9fe::1/128",
                  "fd00:42::42/128", "fd00:c1::a9fe:a9fe/128")  # fmt: skip


@contextmanager
def node(*nic: str, gw4: str | None = None, gw6: str | None = None, metadata_on_lo: bool = True):
    """A namespace like a VM: ``nic0`` with the given addresses and default routes, the metadata
    addresses on ``lo`` (so a fake or a listener can sit there)."""
    with NetNS.create("k3snd") as ns:
        ns.ip("link", "add", "nic0", "type", "veth", "peer", "name", "nicpeer")
        for addr in nic:
            ns.ip("addr", "add", addr, "dev", "nic0", *(("nodad",) if ":" in addr else ()))
        for addr in METADATA_ADDRS if metadata_on_lo else ():
            ns.ip("addr", "add", addr, "dev", "lo", *(("nodad",) if ":" in addr else ()))
        ns.ip("link", "set", "nicpeer", "up")
        ns.ip("link", "set", "nic0", "up")
        if gw4:
            ns.ip("route", "add", "default", "via", gw4, "dev", "nic0")
        if gw6:
            ns.ip("-6", "route", "add", "default", "via", gw6, "dev", "nic0")
        yield ns


@contextmanager
def background(ns: NetNS, *cmd: str):
    proc = ns.popen([*cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith(("listening", "ready")), proc.stderr.read()
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def counters(ns: NetNS) -> dict[str, int]:
    """TCP active opens and UDP datagrams sent in the namespace (/proc/net/snmp* are per netns)."""
    lines = ns.exec("cat", "/proc/net/snmp").stdout.splitlines()
    out = {}
    for head, vals in zip(lines[::2], lines[1::2]):
        proto = head.split(":")[0]
        for k, v in zip(head.split()[1:], vals.split()[1:]):
            out[f"{proto}.{k}"] = int(v)
    for line in ns.exec("cat", "/proc/net/snmp6").stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = int(v.strip() or 0)
    return {k: out.get(k, 0) for k in ("Tcp.ActiveOpens", "Udp.OutDatagrams", "Udp6OutDatagrams")}


def detect(ns: NetNS, *args: str, **env: str) -> dict:
    proc = run_k3snode("detect", "--json", *args, netns=ns.name, env=clean_env(**env), timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_aws_at_the_real_address_with_no_override():
    with (
        node("172.31.5.10/20", gw4="172.31.0.1") as ns,
        FakeIMDSProcess(
            "aws", netns=ns.name, ipv4="3.120.45.10", ipv6="2a05:d014:abc:d00::10"
        ) as fake,
    ):
        out = detect(ns, "--dmi-dir", dmi_dir("aws"), HTTP_PROXY="http://172.31.0.1:3128",
                     http_proxy="http://172.31.0.1:3128")  # fmt: skip
        log = fake.requests()
        fake.set(ipv4="3.120.45.11")  # changed from outside the namespace while it runs
        again = detect(ns, "--dmi-dir", dmi_dir("aws"))
    assert out["provider"] == "aws" and out["source"] == "metadata"
    assert (out["public_ipv4"], out["public_ipv6"]) == ("3.120.45.10", "2a05:d014:abc:d00::10")
    assert out["private_ipv4"] == "172.31.5.10"
    assert log[0]["method"] == "PUT" and log[0]["path"] == "/latest/api/token"
    assert again["public_ipv4"] == "3.120.45.11"


def test_oracle_ipv4_filled_from_the_interface_ipv6_from_metadata():
    with node("129.153.1.2/24", gw4="129.153.1.1") as ns, background(
        ns, sys.executable, IMDS, "--provider", "oracle", "--bind", "169.254.169.254:80",
    ):  # fmt: skip
        out = detect(ns, "--dmi-dir", dmi_dir("oracle"))
    assert out["provider"] == "oracle"
    assert out["public_ipv4"] == "129.153.1.2"
    assert out["public_ipv6"] == "2603:c020:4010:ab00::10"
    assert out["sources"] == {"ipv4": "interface", "ipv6": "metadata"}


def test_exoscale_never_touches_the_password_server():
    with (
        node("89.145.160.5/24", gw4="89.145.160.1") as ns,
        background(
            ns,
            sys.executable,
            IMDS,
            "--provider",
            "exoscale",
            "--bind",
            "169.254.169.254:80",
        ),
        background(ns, sys.executable, LISTENER, "169.254.169.254:8080") as password_server,
    ):
        out = detect(ns, "--dmi-dir", dmi_dir("exoscale"))
        password_server.terminate()
        accepted = password_server.communicate(timeout=10)[0].strip()
    assert out["provider"] == "exoscale" and out["public_ipv4"] == "89.145.160.5"
    assert accepted == ""


def test_metadata_none_still_takes_the_nic_address_but_never_asks_echo():
    with node("3.120.45.77/24", gw4="3.120.45.1") as ns, background(
        ns, sys.executable, IMDS, "--provider", "aws", "--bind", "169.254.169.254:80",
        "--ipv4", "", "--ipv6", "",
    ), background(ns, sys.executable, LISTENER, "127.0.0.1:8443") as echo:  # fmt: skip
        out = detect(ns, "--dmi-dir", dmi_dir("aws"), "--echo",
                     K3SNODE_DISCOVERY_ECHO_SERVICES="https://127.0.0.1:8443,https://127.0.0.1:8443")  # fmt: skip
        echo.terminate()
        accepted = echo.communicate(timeout=10)[0].strip()
    assert out["provider"] == "aws"
    assert out["public_ipv4"] == "3.120.45.77" and out["source"] == "interface"
    assert out["public_ipv6"] is None
    assert any("no public IPv6" in n for n in out["notes"])
    assert any("echo services not asked" in n for n in out["notes"])
    assert accepted == ""


@pytest.mark.parametrize("hardware", ["baremetal", "baremetal-dell", "kvm"])
def test_bare_metal_contacts_no_metadata_address(hardware):
    targets = ("169.254.169.254:80", "169.254.169.254:8080", "169.254.42.42:80",
               "100.100.100.200:80", "169.254.0.23:80", "[fd00:ec2::254]:80",
               "[fd00:a9fe:a9fe::1]:80", "[fd00:42::42]:80", "[fd00:c1::a9fe:a9fe]:80")  # fmt: skip
    nic = ("5.75.1.2/24", "2a01:4f8:c17:1234::2/64")
    with (
        node(*nic, gw4="5.75.1.1", gw6="2a01:4f8:c17:1234::1") as ns,
        background(ns, sys.executable, LISTENER, *targets) as listener,
    ):
        before = counters(ns)
        out = detect(ns, "--dmi-dir", dmi_dir(hardware))
        after = counters(ns)
        listener.terminate()
        accepted = listener.communicate(timeout=10)[0].strip()
    assert out["provider"] is None and out["source"] == "interface"
    assert (out["public_ipv4"], out["public_ipv6"]) == ("5.75.1.2", "2a01:4f8:c17:1234::2")
    assert accepted == ""  # no connection to any metadata address
    assert after == before  # no TCP connection and no UDP datagram at all


ECHO = os.path.join(REPO, "tests", "fakes", "echo.py")


def test_echo_fills_what_the_interface_lacks_with_family_forced(tmp_path):
    from fakes.echo import make_cert

    names = ("echo-a.test", "echo-b.test")
    cert, key = make_cert(str(tmp_path), names)
    with node("10.0.0.5/24", gw4="10.0.0.1") as ns:
        for addr in ("10.0.0.61/32", "10.0.0.62/32", "fd00:99::61/128", "fd00:99::62/128"):
            ns.ip("addr", "add", addr, "dev", "lo", *(("nodad",) if ":" in addr else ()))
        ns.hosts("127.0.0.1 localhost\n10.0.0.61 echo-a.test\nfd00:99::61 echo-a.test\n"
                 "10.0.0.62 echo-b.test\nfd00:99::62 echo-b.test\n")  # fmt: skip
        binds = [a for h in ("10.0.0.61:8443", "10.0.0.62:8443", "[fd00:99::61]:8443",
                             "[fd00:99::62]:8443") for a in ("--bind", h)]  # fmt: skip
        with background(ns, sys.executable, ECHO, "--cert", cert, "--key", key, *binds,
                        "--answer-v4", "5.75.1.2", "--answer-v6", "2a01:4f8::5"):  # fmt: skip
            services = "https://echo-a.test:8443/,https://echo-b.test:8443/"
            out = detect(ns, "--dmi-dir", dmi_dir("baremetal"), "--echo", SSL_CERT_FILE=cert,
                         K3SNODE_DISCOVERY_ECHO_SERVICES=services)  # fmt: skip
            off = detect(ns, "--dmi-dir", dmi_dir("baremetal"), SSL_CERT_FILE=cert,
                         K3SNODE_DISCOVERY_ECHO_SERVICES=services)  # fmt: skip
    assert out["provider"] is None
    assert (out["public_ipv4"], out["public_ipv6"]) == ("5.75.1.2", "2a01:4f8::5")
    assert out["source"] == "echo"
    assert out["private_ipv4"] == "10.0.0.5"
    assert off["public_ipv4"] is None  # echo is opt-in
    assert any("5.75.1.2 (echo) is not on this node's default-route interface" in n
               for n in out["notes"])  # fmt: skip


def test_ipv6_only_instance_asks_the_ipv6_metadata_address():
    with node("2a05:d014:abc:d00::10/64", gw6="2a05:d014:abc:d00::1", metadata_on_lo=False) as ns:
        ns.ip("addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad")
        ns.ip("addr", "del", "127.0.0.1/8", "dev", "lo")  # no IPv4 address at all
        assert ns.ip("-4", "-o", "addr", "show").stdout.strip() == ""
        with background(ns, sys.executable, IMDS, "--provider", "aws", "--bind",
                        "[fd00:ec2::254]:80", "--ipv4", ""):  # fmt: skip
            out = detect(ns, "--dmi-dir", dmi_dir("aws"))
    assert out["provider"] == "aws" and out.get("error") is None
    assert out["public_ipv4"] is None
    assert out["public_ipv6"] == "2a05:d014:abc:d00::10" and out["source"] == "metadata"
    assert any("http://169.254.169.254" in n and "unreachable" in n for n in out["notes"])


def test_dual_stack_the_ipv6_address_wins_while_the_ipv4_one_hangs():
    """IPv4 routed to a gateway that never answers (the SYN waits on ARP); the IPv6 address is
    raised after the stagger and answers: its answer is used, the IPv4 attempt is abandoned."""
    with node("172.31.5.10/20", "2a05:d014:abc:d00::10/64", gw4="172.31.0.1",
              gw6="2a05:d014:abc:d00::1", metadata_on_lo=False) as ns:  # fmt: skip
        ns.ip("addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad")
        with FakeIMDSProcess("aws", netns=ns.name, bind="[fd00:ec2::254]:80") as fake:
            out = detect(ns, "--dmi-dir", dmi_dir("aws"))
            log = fake.requests()
    assert out["provider"] == "aws" and out.get("error") is None
    assert (out["public_ipv4"], out["public_ipv6"]) == ("3.120.45.10", "2a05:d014:abc:d00::10")
    assert out["source"] == "metadata" and "sources" not in out
    assert log and all(":" in r["client"] for r in log)  # every request went over IPv6
    # raced, not tried in turn: the IPv4 address was never waited for (its 4 connect timeouts
    # would have left a note)
    assert not any("169.254.169.254" in n for n in out.get("notes", [])), out["notes"]


def test_a_metadata_host_name_is_resolved_inside_the_discovery_timeout():
    """A resolver that never answers (UDP 53 read and dropped) cannot hold discovery past its
    timeout; a name in /etc/hosts is used like an address."""
    blackhole = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.bind(('127.0.0.1',53));print('ready',flush=True)\n"
        "while True: s.recvfrom(512); print('query',flush=True)"
    )
    with node("3.120.45.77/24", gw4="3.120.45.1") as ns:
        ns.hosts("127.0.0.1 localhost\n169.254.169.254 metadata.example\n")
        with open(f"/etc/netns/{ns.name}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:5 attempts:3\n")
        with background(ns, sys.executable, "-c", blackhole) as dns, background(
            ns, sys.executable, IMDS, "--provider", "aws", "--bind", "169.254.169.254:80",
        ):  # fmt: skip
            slow = detect(ns, "--dmi-dir", dmi_dir("aws"), "--metadata-endpoint",
                          "http://metadata.never-answers.example", K3SNODE_DISCOVERY_TIMEOUT="1.5")  # fmt: skip
            named = detect(ns, "--dmi-dir", dmi_dir("aws"), "--metadata-endpoint",
                           "http://metadata.example")  # fmt: skip
            dns.terminate()
            queries = dns.communicate(timeout=10)[0]
    assert "resolving metadata.never-answers.example took longer than" in slow["error"]
    assert slow["public_ipv4"] == "3.120.45.77"  # the interface still answers
    assert "query" in queries  # the name really went to the (silent) resolver
    assert named["public_ipv4"] == "3.120.45.10" and named["source"] == "metadata"


CLOUD_INIT = os.path.join(REPO, "tests", "fakes", "cloud-init", "instance-data-aws.json")


def detect_with_cloud_init(ns: NetNS, *args: str) -> dict:
    """``k3snode detect`` with this node's /run/cloud-init holding the recorded instance-data.json:
    a private mount namespace with its own /run, so the host's /run is untouched."""
    script = ('mount -t tmpfs tmpfs /run && mkdir /run/cloud-init && cp "$0" '
              '/run/cloud-init/instance-data.json && exec "$@"')  # fmt: skip
    cmd = ["ip", "netns", "exec", ns.name, "unshare", "--mount", "--propagation", "private",
           "sh", "-c", script, CLOUD_INIT, sys.executable, "-m", "k3snode", "detect", "--json",
           *args]  # fmt: skip
    proc = subprocess.run(
        cmd, env=clean_env(), text=True, capture_output=True, timeout=60, cwd=REPO
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_cloud_init_names_the_provider_and_metadata_stays_the_source_of_truth():
    with node("172.31.81.43/20", gw4="172.31.80.1") as ns, FakeIMDSProcess(
        "aws", netns=ns.name, ipv4="3.89.187.200", ipv6=None
    ) as fake:  # fmt: skip
        out = detect_with_cloud_init(ns)  # the host's own DMI: whatever it is, the hint decides
        fake.set(mode="disabled")
        down = detect_with_cloud_init(ns)
    assert out["provider"] == "aws" and out.get("error") is None
    assert out["public_ipv4"] == "3.89.187.200"  # now, not the boot-time 3.89.187.177
    assert down["provider"] == "aws"
    assert down["public_ipv4"] == "3.89.187.177" and down["source"] == "cloud-init"
    assert any("boot time" in n and "did not answer" in n for n in down["notes"])
