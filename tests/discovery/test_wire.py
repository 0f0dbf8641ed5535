"""The HTTP/1.1 exchange against real sockets (plain and TLS): bodies by length, chunks and end of
connection, caps, and one deadline for the whole answer — a server dribbling a byte at a time over
HTTPS is cut off exactly as over HTTP."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
from fakes.echo import make_cert

from k3snode.discovery import http
from k3snode.discovery.errors import MetadataTimeout
from k3snode.discovery.wire import BadRequest, Deadline, ProtocolError, Target, TooLarge, exchange


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(str(tmp_path_factory.mktemp("wire")))


class Server:
    """Answers every connection with ``script(conn)`` (over TLS when ``cert`` is given); records
    each request head in ``heads``. Gives up on a client after 30 s, so no test hangs."""

    def __init__(self, script, cert=None, handshake: bool = True) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.tls = None
        if cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*cert)
        self.handshake = handshake
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            if self.tls is not None:
                if not self.handshake:
                    self.stop.wait(30)
                    return
                conn = self.tls.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                more = conn.recv(4096)
                if not more:
                    return
                head += more
            self.heads.append(head)
            self.script(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def send(data: bytes):
    return lambda conn, stop: conn.sendall(data)


def dribble(conn, stop) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        if stop.wait(0.2):
            return
        conn.sendall(b"x")


def ask(server: Server, cert=None, *, timeout=10.0, deadline=60.0, max_body=1024, method="GET"):
    tls = ssl.create_default_context(cafile=cert[0]) if cert else None
    return exchange(
        Target("127.0.0.1", "127.0.0.1", server.port, tls), method, "/x", {"A": "b"}, b"",
        connect_timeout=1, read_timeout=timeout, deadline=time.monotonic() + deadline,
        max_body=max_body, clock=time.monotonic,
    )  # fmt: skip


@pytest.mark.parametrize("tls", [False, True])
def test_bodies_by_length_chunks_and_end_of_connection(cert, tls):
    answers = {
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello": b"hello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n": (
            b"hello"
        ),
        b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot here": b"not here",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n": b"",
    }
    for raw, body in answers.items():
        with Server(send(raw), cert if tls else None) as srv:
            resp = ask(srv, cert if tls else None)
        assert resp.body == body
    assert srv.heads[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nA: b\r\n" in srv.heads[0] and b"Connection: close" in srv.heads[0]


@pytest.mark.parametrize("tls", [False, True])
def test_a_dribbling_server_is_cut_off_at_the_deadline_over_http_and_https(cert, tls):
    with Server(dribble, cert if tls else None) as srv:
        with pytest.raises(Deadline):
            ask(srv, cert if tls else None, timeout=1.0)  # the answer's own time
        with pytest.raises(Deadline):
            ask(srv, cert if tls else None, timeout=60, deadline=1.0)  # the caller's deadline


def test_a_tls_handshake_that_never_comes_is_cut_off_at_the_deadline(cert):
    with Server(dribble, cert, handshake=False) as srv, pytest.raises(Deadline):
        ask(srv, cert, timeout=1.0)


def test_metadata_client_over_https_gets_the_whole_answer_deadline(cert):
    with Server(dribble, cert) as srv:
        client = http.Client(
            "https://127.0.0.1", time.monotonic() + 20, override=f"https://127.0.0.1:{srv.port}",
            read_timeout=1.0, tls=ssl.create_default_context(cafile=cert[0]),
        )  # fmt: skip
        with pytest.raises(MetadataTimeout, match=r"no answer within 1\.0s"):
            client.get("/slow")
    assert client.requests == 1  # a timeout is not retried


def test_fetch_over_https_gets_the_whole_answer_deadline(cert):
    with Server(dribble, cert) as srv, pytest.raises(socket.timeout):
        http.fetch(
            f"https://127.0.0.1:{srv.port}/", 1.0, tls=ssl.create_default_context(cafile=cert[0])
        )


def test_caps_and_garbage():
    too_large = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"y" * 5000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + b"z" * 1024
        + b"\r\n1\r\nz\r\n0\r\n\r\n",
    )  # fmt: skip
    for raw in too_large:
        with Server(send(raw)) as srv, pytest.raises(TooLarge):
            ask(srv)
    garbage = {
        b"SSH-2.0-OpenSSH\r\n\r\n": "status line",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n": "header line",
        b"": "closed before",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc": "3 of 9",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000: "headers longer",
    }
    for raw, why in garbage.items():
        with Server(send(raw)) as srv, pytest.raises(ProtocolError, match=why):
            ask(srv)


def test_control_characters_are_refused_before_connecting():
    target = Target("127.0.0.1", "127.0.0.1", 9, None)  # discard port: never connected to
    for path, headers in (("/a b", {}), ("/a\r\nX: y", {}), ("/", {"A": "b\r\nC: d"})):
        with pytest.raises(BadRequest):
            exchange(target, "GET", path, headers, b"", connect_timeout=1, read_timeout=1,
                     deadline=0, max_body=10, clock=time.monotonic)  # fmt: skip


def test_redirects_followed_only_when_asked_and_only_to_https(cert):
    ctx = ssl.create_default_context(cafile=cert[0])
    with Server(send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), cert) as final:
        moved = f"HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:{final.port}/s\r\n\r\n"
        with Server(send(moved.encode()), cert) as first:
            url = f"https://127.0.0.1:{first.port}/install.sh"
            assert http.fetch(url, 10, tls=ctx).status == 302
            assert http.fetch(url, 10, tls=ctx, redirects=2).body == b"ok"
    plain = b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/s\r\n\r\n"
    with Server(send(plain), cert) as srv, pytest.raises(ValueError, match="non-HTTPS"):
        http.fetch(f"https://127.0.0.1:{srv.port}/", 10, tls=ctx, redirects=2)
