"""Runs inside the qemu guest (kernel WireGuard, Debian's python3-pyroute2): the underlay and the
kernel backend, driven the same way as the wireguard-go tests on the host. Prints one
``RESULT <name> <json>`` line per step for the host test to judge."""

import json
import os
import subprocess
import sys

LABEL = sys.argv[1]  # "debian": Debian's python3-pyroute2; "pypi": the copy in /guest/pypi
PATH = "/guest/src" + (":/guest/pypi" if LABEL == "pypi" else "")
sys.path[:0] = PATH.split(":")
ENV = {**os.environ, "PYTHONPATH": PATH}


def result(name, value):
    print("RESULT", f"{LABEL}.{name}", json.dumps(value), flush=True)


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True, env=ENV)


def k3snode(ns, *args):
    r = subprocess.run(
        ["ip", "netns", "exec", ns, "python3", "-m", "k3snode", *args],
        capture_output=True,
        text=True,
        env=ENV,
    )
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}


import pyroute2  # noqa: E402

result("pyroute2", pyroute2.__file__)

# The kernel probe with the module unloaded: creating the link loads it, in this process, no fork;
# also with only CAP_NET_ADMIN (the hardened unit's bounding set: no CAP_SYS_MODULE).
PROBE = (
    "import json, os; forks = []; os.register_at_fork(before=lambda: forks.append(1)); "
    "from k3snode.mesh.wg import preflight; ok, why = preflight.kernel_wireguard(); "
    "print(json.dumps([ok, why, len(forks), os.path.isdir('/sys/module/wireguard')]))"
)
for name, wrapper in (("probe_unloaded", ""), ("probe_net_admin_only", "setpriv "
                      "--bounding-set=-all,+net_admin --inh-caps=-all ")):  # fmt: skip
    sh("ip netns del a; ip netns del b; ip netns del p; rmmod wireguard", check=False)
    sh("ip netns add p")
    r = sh(f'ip netns exec p {wrapper}python3 -c "{PROBE}"', check=False)
    links = sh("ip -n p -o link", check=False).stdout
    result(name, {"rc": r.returncode, "out": r.stdout, "err": r.stderr[-2000:], "links": links})
sh("ip netns del p", check=False)

sh("modprobe wireguard; modprobe veth")
sh("ip netns del a; ip netns del b", check=False)
sh("ip netns add a; ip netns add b; ip link add va netns a type veth peer name vb netns b")
sh("ip -n a addr add 192.0.2.1/24 dev va; ip -n a link set va up; ip -n a link set lo up")
sh("ip -n b addr add 192.0.2.2/24 dev vb; ip -n b link set vb up; ip -n b link set lo up")

result(
    "check",
    k3snode("a", "check", "--json", "--mesh", "wireguard-native", "--config", "/guest/a.toml"),
)
result("up_b", k3snode("b", "wireguard", "up", "--config", "/guest/b.toml"))
result("up_a", k3snode("a", "wireguard", "up", "--config", "/guest/a.toml"))
ping = sh("ip netns exec a ping -c 3 -i 0.5 -W 3 10.99.0.2", check=False)
result("ping", {"rc": ping.returncode, "out": ping.stdout})
result("again_a", k3snode("a", "wireguard", "up", "--config", "/guest/a.toml"))
result("show_a", k3snode("a", "wireguard", "show", "--json", "--config", "/guest/a.toml"))
# the kernel backend directly: change, remove, replace (same steps as the wireguard-go test)
r = subprocess.run(
    ["ip", "netns", "exec", "a", "python3", "/guest/guest_backend.py"],
    capture_output=True,
    text=True,
    env=ENV,
)
result("backend", {"rc": r.returncode, "out": r.stdout, "err": r.stderr})
result("remove_a", k3snode("a", "wireguard", "up", "--config", "/guest/a-alone.toml"))
result(
    "after_remove", k3snode("a", "wireguard", "show", "--json", "--config", "/guest/a-alone.toml")
)
sh("ip netns del a; ip netns del b")
