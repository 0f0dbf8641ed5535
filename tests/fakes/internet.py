"""A small stand-in for the internet a fresh node meets: static files per host name, over HTTPS
(a test CA) and HTTP, with a log of every request.

``python internet.py ROOT BIND_IP CERT KEY LOG``: serves ``ROOT/<Host>/<path>`` (a directory's
``index.html`` for ``/``, else a listing — enough for pip's ``--find-links``) on BIND_IP ports 443
(TLS) and 80, appends ``<host> <path> <status>`` to LOG, prints ``ready``. Symlinks are followed,
so ``…/releases/latest/download`` can point at a version's directory, as GitHub redirects it.
"""

from __future__ import annotations

import functools
import http.server
import os
import ssl
import sys
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    log_path = ""

    def translate_path(self, path: str) -> str:
        host = (self.headers.get("Host") or "").split(":")[0] or "default"
        return super().translate_path("/" + host + path)

    def log_request(self, code="-", size="-") -> None:
        host = (self.headers.get("Host") or "").split(":")[0] if self.headers else "-"
        with open(self.log_path, "a") as f:
            f.write(f"{host} {self.path} {code}\n")

    def log_message(self, format, *args) -> None:  # quiet on stderr
        pass


def main(argv: list[str]) -> int:
    root, ip, cert, key, log = argv
    Handler.log_path = log
    handler = functools.partial(Handler, directory=root)
    servers = []
    https = http.server.ThreadingHTTPServer((ip, 443), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https.socket = context.wrap_socket(https.socket, server_side=True)
    servers.append(https)
    servers.append(http.server.ThreadingHTTPServer((ip, 80), handler))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
