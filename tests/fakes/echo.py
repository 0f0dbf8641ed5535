"""A fake HTTPS "what is my IP" service, and a throwaway certificate for it.

``EchoServer(host, answer_v4=..., answer_v6=...)`` serves HTTPS on ``host`` (port 0: a free one)
and answers the text for the family the client connected with — or, with ``answer="peer"``, the
client's own address, like a real echo service. ``make_cert(dir, names)`` writes a self-signed
certificate (``openssl`` CLI) valid for the given DNS names and IPs; point ``SSL_CERT_FILE`` at it
(or pass an ``ssl.SSLContext``) so clients trust it. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_cert(directory: str, names: tuple[str, ...] = ("127.0.0.1", "::1")) -> tuple[str, str]:
    """(cert.pem, key.pem) of a self-signed certificate for ``names`` (IPs or DNS names)."""
    sans = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            sans.append(f"IP:{n}")
        except ValueError:
            sans.append(f"DNS:{n}")
    cert, key = os.path.join(directory, "echo.pem"), os.path.join(directory, "echo.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=k3snode test echo", "-keyout", key, "-out", cert,
         "-addext", f"subjectAltName={','.join(sans)}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class EchoServer:
    def __init__(
        self,
        host: str,
        cert: tuple[str, str],
        answer_v4: str | None = None,
        answer_v6: str | None = None,
        answer: str | None = None,
        port: int = 0,
    ) -> None:
        self.requests: list[tuple[str, str]] = []  # (client address, path)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:
                peer = self.client_address[0]
                outer.requests.append((peer, self.path))
                mapped = peer.startswith("::ffff:") or "." in peer
                if answer == "peer":
                    text = peer[7:] if peer.startswith("::ffff:") else peer
                else:
                    text = answer if answer is not None else (answer_v4 if mapped else answer_v6)
                body = ((text or "") + "\n").encode()
                self.send_response(200 if text is not None else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type(
            "S", (ThreadingHTTPServer,), {"address_family": fam, "daemon_threads": True}
        )
        self.server = server_cls((host, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python echo.py --cert C --key K --bind HOST:PORT [--bind …] [--answer-v4 A] [--answer-v6 B]
    [--answer peer]``: print ``listening``, serve until killed."""
    import argparse
    import signal

    p = argparse.ArgumentParser()
    p.add_argument("--bind", action="append", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--answer-v4")
    p.add_argument("--answer-v6")
    p.add_argument("--answer")
    a = p.parse_args(argv)
    servers = []
    for b in a.bind:
        host, _, port = b.rpartition(":")
        servers.append(EchoServer(host.strip("[]"), (a.cert, a.key), a.answer_v4, a.answer_v6,
                                  a.answer, int(port)))  # fmt: skip
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("listening", flush=True)
    done.wait()
    for s in servers:
        s.close()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
