"""A real BIND 9 (Debian's ``bind9``) for registration tests: ``named`` as user ``bind`` inside a
network namespace, one zone whose ``update-policy`` grants a TSIG key only the registration
name's A/AAAA records, and ``dig``/``nsupdate`` (``bind9-dnsutils``) to look and to seed.

The update log (``category update``, ISO 8601 UTC times with milliseconds) tells when an update
landed, so a test can order it against other timestamps.
"""

from __future__ import annotations

import calendar
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

from helpers import have, sh, wait_for

ZONE = "example.test"
NAME = "k3s.example.test"
KEY = "k3snode-key"


def available() -> bool:
    try:
        pwd.getpwnam("bind")
    except KeyError:
        return False
    return have("named", "tsig-keygen", "dig", "nsupdate")


class Bind:
    def __init__(self, netns: str, port: int = 5353, listen6: bool = True) -> None:
        self.netns = netns
        self.port = port
        self.listen6 = listen6
        self.dir = tempfile.mkdtemp(prefix="k3snode-bind-")
        os.chmod(self.dir, 0o755)
        self.proc: subprocess.Popen | None = None
        self.key_conf = os.path.join(self.dir, "key.conf")
        self.admin_conf = os.path.join(self.dir, "admin.conf")
        with open(self.key_conf, "w") as f:
            f.write(sh("tsig-keygen", "-a", "hmac-sha256", KEY).stdout)
        with open(self.admin_conf, "w") as f:
            f.write(sh("tsig-keygen", "-a", "hmac-sha256", "admin-key").stdout)
        v6 = "listen-on-v6 port {p} {{ ::1; }};" if listen6 else "listen-on-v6 { none; };"
        with open(os.path.join(self.dir, "named.conf"), "w") as f:
            f.write(f"""include "{self.key_conf}";
include "{self.admin_conf}";
options {{ directory "{self.dir}"; listen-on port {port} {{ 127.0.0.1; }};
          {v6.format(p=port)}
          pid-file "{self.dir}/named.pid"; recursion no; dnssec-validation no; }};
logging {{ channel upd {{ file "{self.dir}/update.log"; print-time iso8601-utc;
                          severity info; }};
          category update {{ upd; }}; category default {{ upd; }}; }};
zone "{ZONE}" {{ type primary; file "{self.dir}/db";
          update-policy {{ grant {KEY} name {NAME}. A AAAA; grant admin-key zonesub ANY; }}; }};
""")
        with open(os.path.join(self.dir, "db"), "w") as f:
            f.write(
                f"$TTL 60\n@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 600 60\n"
                f"@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\nother IN A 192.0.2.99\n"
            )
        shutil.chown(self.dir, "bind", "bind")
        for name in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, name), "bind", "bind")
        os.chmod(self.key_conf, 0o640)
        os.chmod(self.admin_conf, 0o640)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def secret(self, conf: str | None = None) -> str:
        with open(conf or self.key_conf) as f:
            return re.search(r'secret "([^"]+)"', f.read())[1]

    def start(self) -> None:
        cmd = ["ip", "netns", "exec", self.netns, "named", "-f", "-u", "bind",
               "-c", os.path.join(self.dir, "named.conf")]  # fmt: skip
        with open(os.path.join(self.dir, "stderr"), "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        wait_for(lambda: self._answers(), 20, 0.1, what="named to answer")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"named exited: {self.log()}{self.stderr()}")
        out = self.dig(ZONE, "SOA", check=False)
        return "ns." in out

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- looking ---------------------------------------------------------------------------
    def dig(self, name: str = NAME, rtype: str = "A", check: bool = True) -> str:
        out = sh("dig", "+short", "+time=2", "+tries=1", "-p", str(self.port), "@127.0.0.1",
                 name, rtype, netns=self.netns, check=check)  # fmt: skip
        return out.stdout

    def records(self, rtype: str = "A", name: str = NAME) -> list[str]:
        return sorted(line for line in self.dig(name, rtype).split() if line)

    def ttl(self, rtype: str = "A", name: str = NAME) -> int:
        out = sh("dig", "+noall", "+answer", "-p", str(self.port), "@127.0.0.1", name, rtype,
                 netns=self.netns).stdout  # fmt: skip
        return int(out.split()[1])

    def serial(self) -> int:
        return int(self.dig(ZONE, "SOA").split()[2])

    def nsupdate(self, *lines: str) -> None:
        """An update signed with the admin key (may change anything in the zone)."""
        text = f"server 127.0.0.1 {self.port}\nzone {ZONE}\n" + "\n".join(lines) + "\nsend\n"
        sh_in = subprocess.run(
            ["ip", "netns", "exec", self.netns, "nsupdate", "-k", self.admin_conf],
            input=text, text=True, capture_output=True,
        )  # fmt: skip
        assert sh_in.returncode == 0, sh_in.stderr

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "update.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr(self) -> str:
        try:
            with open(os.path.join(self.dir, "stderr")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def update_times(self, needle: str) -> list[float]:
        """Unix times of update-log lines containing ``needle`` (e.g. an added address)."""
        out = []
        for line in self.log().splitlines():
            if needle in line and "updating zone" in line:
                stamp = line.split()[0]  # 2026-11-30T19:45:01.123Z
                base, _, frac = stamp.rstrip("Z").partition(".")
                t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
                out.append(t + float("0." + (frac or "0")))
        return out
