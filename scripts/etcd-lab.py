#!/usr/bin/env python3
"""Bring up the multi-cloud etcd lab (tests/cloudlab.py) and keep it up until Ctrl-C: three
clouds behind NAT, k3snode run with the underlay on each server, etcd on node-ip. Prints how to
look around and how to inject the faults by hand. Needs root, wireguard-go, etcd and nftables.

    sudo .venv/bin/python scripts/etcd-lab.py [--kernel]   # --kernel: userspace = "never"
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO, "tests"), REPO]

from cloudlab import Lab, have_lab_tools  # noqa: E402


def main() -> int:
    missing = have_lab_tools()
    if os.geteuid() != 0 or missing:
        print(f"etcd-lab: needs root and {missing or 'network namespaces'}", file=sys.stderr)
        return 2
    userspace = "never" if "--kernel" in sys.argv[1:] else "always"
    with (
        tempfile.TemporaryDirectory(prefix="etcd-lab-") as d,
        Lab(Path(d), userspace=userspace) as lab,
    ):
        print(f"lab up in {d}; leader: {lab.leader().name if lab.leader() else '?'}")
        for cl in lab.clouds:
            print(
                f"  {cl.name} ({cl.provider}): node netns {cl.node.name}, router {cl.router.name}, "
                f"public {cl.public}, underlay {cl.ifname} {cl.underlay}, logs {cl.root}/*.log"
            )
        obs = lab.observer().node.name
        print(
            f"\n  ip netns exec {obs} env ETCDCTL_API=3 etcdctl --endpoints "
            + ",".join(f"http://{c.underlay}:2379" for c in lab.clouds)
            + " endpoint status -w table"
        )
        print(f"  ip netns exec {lab.clouds[0].node.name} wg show {lab.clouds[0].ifname}")
        print("\nCtrl-C to tear it all down.")
        try:
            while True:
                time.sleep(5)
                print(f"healthy: {lab.healthy()}", flush=True)
        except KeyboardInterrupt:
            print("tearing down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
