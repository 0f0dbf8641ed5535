"""TCP listeners that only record who connected — proof that something was (not) contacted."""

from __future__ import annotations

import select
import socket
import threading


class Listener:
    """Listen on ``(host, port)`` pairs (port 0: a free one); ``accepted`` lists (host, port, peer)."""

    def __init__(self, *addrs: tuple[str, int]) -> None:
        self.socks: list[socket.socket] = []
        self.accepted: list[tuple[str, int, str]] = []
        self._stop = threading.Event()
        for host, port in addrs:
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(16)
            self.socks.append(s)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.socks]

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(self.socks, [], [], 0.1)
            for s in ready:
                conn, peer = s.accept()
                host, port = s.getsockname()[:2]
                self.accepted.append((host, port, peer[0]))
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.socks:
            s.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
