#!/usr/bin/env python3
"""Stand-in for ``systemctl`` (the netns tier has no systemd): answers ``show`` from a JSON state
file and records every call, with the K3s config it saw at each ``restart``.

Environment: ``STUB_SYSTEMCTL_STATE`` (state file), ``STUB_SYSTEMCTL_LOG`` (JSON lines),
``STUB_K3S_CONFIG`` (the config file to record). A unit's entry in the state file::

    {"load": "loaded", "active": "active", "sub": "running", "invocation": 1,
     "after_restart": "active" | "failed" | "slow", "slow_for": 2.0}

A unit missing from the file is ``not-found``. ``slow``: activating for ``slow_for`` seconds.
"""

import fcntl
import json
import os
import sys
import time

STATE = os.environ["STUB_SYSTEMCTL_STATE"]
LOG = os.environ["STUB_SYSTEMCTL_LOG"]


def main(argv):
    with open(STATE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(STATE) as f:
            state = json.load(f)
        units = state.setdefault("units", {})
        entry = {"t": time.time(), "argv": argv}
        rc = 0
        if argv and argv[0] == "show":
            unit = argv[-1]
            u = units.get(unit)
            if u is None:
                props = {
                    "LoadState": "not-found",
                    "ActiveState": "inactive",
                    "SubState": "dead",
                    "InvocationID": "",
                    "ExecMainStartTimestampMonotonic": "0",
                }
            else:
                active, sub = u["active"], u["sub"]
                if u.get("ready_at") and time.time() < u["ready_at"]:
                    active, sub = "activating", "start"
                elif u.get("ready_at"):
                    u.pop("ready_at")
                props = {
                    "LoadState": u["load"],
                    "ActiveState": active,
                    "SubState": sub,
                    "InvocationID": f"{u['invocation']:032x}",
                    "ExecMainStartTimestampMonotonic": str(u["invocation"] * 1000),
                }
            print("\n".join(f"{k}={v}" for k, v in props.items()))
        elif argv and argv[0] == "restart":
            unit = argv[-1]
            u = units.get(unit)
            cfg = os.environ.get("STUB_K3S_CONFIG")
            if cfg and os.path.exists(cfg):
                with open(cfg) as f:
                    entry["config"] = f.read()
            if u is None:
                print(f"Failed to restart {unit}: Unit {unit} not found.", file=sys.stderr)
                rc = 5
            else:
                u["invocation"] += 1
                outcome = u.get("after_restart", "active")
                if outcome == "failed":
                    u["active"], u["sub"] = "failed", "failed"
                else:
                    u["active"], u["sub"] = "active", "running"
                    if outcome == "slow":
                        u["ready_at"] = time.time() + float(u.get("slow_for", 2))
        else:
            rc = 0
        entry["rc"] = rc
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")
        tmp = STATE + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, STATE)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
