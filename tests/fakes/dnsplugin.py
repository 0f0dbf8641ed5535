"""A registration backend plugin (the documented interface, docs/registration.md) that keeps the
name's records in a JSON file: ``{"records": [...], "fail": "", "calls": [...]}``. ``fail`` set
makes every update fail with that answer — a DNS service that is down or refuses."""

from __future__ import annotations

import json
import os


class FileDNS:
    def __init__(self, reg) -> None:
        self.reg = reg
        self.path = os.environ["K3SNODE_TEST_DNS_FILE"]

    def _load(self) -> dict:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"records": [], "fail": "", "calls": []}

    def where(self) -> str:
        return "file-dns"

    def replace(self, remove, add) -> None:
        from k3snode.registration import RegistrationError

        d = self._load()
        if d.get("sleep"):  # a service that answers slowly
            import time

            time.sleep(d["sleep"])
        d.setdefault("calls", []).append({"remove": list(remove), "add": list(add)})
        if d.get("fail"):
            with open(self.path, "w") as f:
                json.dump(d, f)
            raise RegistrationError(f"{self.reg.name} at file-dns: {d['fail']}")
        d["records"] = [r for r in d["records"] if r not in remove]
        d["records"] += [a for a in add if a not in d["records"]]
        with open(self.path, "w") as f:
            json.dump(d, f)

    def lookup(self):
        return tuple(self._load()["records"])


def make(reg):
    return FileDNS(reg)
