"""Runs inside the qemu guest (Debian's cloud kernel: kernel WireGuard): the multi-cloud etcd lab
of tests/cloudlab.py with ``userspace = "never"``, then scenario (a) — one cloud re-associates a
server's public address while a writer puts keys — measured as on the host. Prints ``RESULT
<name> <json>`` lines for the host test to judge."""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path[:0] = ["/guest", "/guest/tests"]


def result(name, value):
    print("RESULT", name, json.dumps(value), flush=True)


subprocess.run("modprobe wireguard; modprobe veth; modprobe nf_tables", shell=True, check=False)
if not os.path.exists("/etc/hosts"):  # minbase has none: `ip netns exec` bind-mounts over it
    Path("/etc/hosts").write_text("127.0.0.1 localhost\n")
from cloudlab import Lab, measure  # noqa: E402

t0 = time.monotonic()
with tempfile.TemporaryDirectory() as d:
    try:
        with Lab(Path(d), userspace="never", keepalive=5, resolve_interval=15) as lab:
            result("setup_s", time.monotonic() - t0)
            s1 = lab.clouds[0]
            kinds = {}
            for cl in lab.clouds:
                r = subprocess.run(["ip", "-n", cl.node.name, "-d", "link", "show", cl.ifname],
                                   capture_output=True, text=True)  # fmt: skip
                kinds[cl.name] = "wireguard" in r.stdout.split("\n", 2)[-1]
            result("kernel_links", kinds)
            result("logs_created", [lab.k3snode_log(cl).count("(kernel WireGuard)")
                                    for cl in lab.clouds])  # fmt: skip
            # the guest's noise floor: the same measurement with no fault (TCG is slow)
            control = measure(lab, "none", lambda: time.sleep(5), leader=s1, timeout=180)
            result("control", asdict(control))
            runs = []
            for i in range(3):
                out = measure(lab, "reassociate", lambda i=i: lab.reassociate(
                    s1, f"3.120.45.{70 + i}"), leader=s1, timeout=180)  # fmt: skip
                runs.append(asdict(out))
            result("reassociate", runs)
            r = subprocess.run(["ip", "netns", "exec", lab.observer().node.name, "wg", "show",
                                lab.observer().ifname, "endpoints"], capture_output=True, text=True)  # fmt: skip
            result("endpoints", r.stdout)
    except BaseException as e:
        result("error", "".join(traceback.format_exception(e))[-3000:])
        for log in Path(d).glob("s*/*.log"):
            print(f"== {log}\n{log.read_text(errors='replace')[-2000:]}")
result("total_s", time.monotonic() - t0)
os.sync()
