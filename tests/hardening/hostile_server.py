"""A real HTTP server that misbehaves the ways issue 15 found, for k3snode's clients to face.

    python hostile_server.py PORT MODE [BODY_FILE] [LOG_FILE]

Every GET is answered from BODY_FILE (empty when omitted) with ``Metadata-Flavor: Google``;
every request's path is appended to LOG_FILE. Modes:

    plain      200 with the body
    same-etag  200 at once with the same ETag every time (a long-poll that never waits)
    new-etag   200 at once with a new ETag every time
    bad-etag   200 with an ETag holding a space and a quote
    redirect   302 to http://127.0.0.2:PORT/elsewhere
    error      500 with BODY_FILE as the error text
"""

from __future__ import annotations

import itertools
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    body = b""
    if len(sys.argv) > 3 and sys.argv[3]:
        with open(sys.argv[3], "rb") as f:
            body = f.read()
    log = sys.argv[4] if len(sys.argv) > 4 else ""
    counter = itertools.count()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            n = next(counter)
            if log:
                with open(log, "a") as f:
                    f.write(
                        f"{self.client_address[0]} {self.path} "
                        f"{self.headers.get('Metadata-Flavor', '-')}\n"
                    )
            status, headers = 200, {"Metadata-Flavor": "Google"}
            if mode == "same-etag":
                headers["ETag"] = "0123456789abcdef"
            elif mode == "new-etag":
                headers["ETag"] = f"{n:016x}"
            elif mode == "bad-etag":
                headers["ETag"] = 'a b"c'
            elif mode == "redirect":
                status, headers["Location"] = 302, f"http://127.0.0.2:{port}/elsewhere"
            elif mode == "error":
                status = 500
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("0.0.0.0", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
