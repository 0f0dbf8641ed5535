#!/usr/bin/env python3
"""A fake GCE metadata server that supports the long-poll (``wait_for_change``), the way Google's
does: a request with ``wait_for_change=true&last_etag=E`` is held until the answer's ETag differs
from E or ``timeout_sec`` passes. Also answers the leaves discovery reads. The state (``external_ip``)
comes from a JSON file re-read on every request, so a test changes it by rewriting the file.

    gcp_longpoll.py --bind 127.0.0.1:0 --state-file STATE.json   # prints "listening on HOST:PORT"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NIC = "/computeMetadata/v1/instance/network-interfaces/"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1:0")
    ap.add_argument("--state-file", required=True)
    args = ap.parse_args()

    def state() -> dict:
        try:
            with open(args.state_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def nics() -> tuple[bytes, str]:
        ip = state().get("external_ip")
        configs = [{"externalIp": ip, "type": "ONE_TO_ONE_NAT"}] if ip else []
        body = json.dumps([{"ip": "10.128.0.2", "accessConfigs": configs}]).encode()
        return body, hashlib.sha1(body).hexdigest()[:16]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.send(403, b"Missing Metadata-Flavor:Google header.\n")
            url = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == NIC:
                body, etag = nics()
                if q.get("wait_for_change") == "true" and q.get("last_etag") == etag:
                    end = time.monotonic() + float(q.get("timeout_sec", "60"))
                    while time.monotonic() < end:
                        time.sleep(0.05)
                        body, etag = nics()
                        if etag != q["last_etag"]:
                            break
                return self.send(200, body, etag, "application/json")
            if url.path == NIC + "0/access-configs/0/external-ip":
                ip = state().get("external_ip")
                return self.send(200, ip.encode()) if ip else self.send(404, b"Not Found\n")
            if url.path == NIC + "0/ip":
                return self.send(200, b"10.128.0.2")
            return self.send(404, b"Not Found\n")

        def send(self, code: int, body: bytes, etag: str = "", ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", ctype)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    host, port = args.bind.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
