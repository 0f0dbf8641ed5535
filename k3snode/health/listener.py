"""The health endpoint's listening socket, bound before READY=1 with nothing but ``socket``: its
port is in the status file from the start, and a client that connects right after READY waits in
the kernel's backlog until ``server.py`` (whose ``http.server`` pulls in ``http.client``, ``email``
and ``ssl``: ≈ 38 ms of imports, measured with ``-X importtime``) serves it, right after READY."""

from __future__ import annotations

import socket

BACKLOG = 16


def bind(listen: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on ``listen``:``port`` (0: any free port); OSError when taken."""
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
