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


def main(argv: list[str]) -> int:
    """``python listener.py HOST:PORT…``: print ``ready``, then one ``HOST PORT PEER`` line per
    accepted connection, until killed (SIGTERM)."""
    import signal

    addrs = []
    for a in argv:
        host, _, port = a.rpartition(":")
        addrs.append((host.strip("[]"), int(port)))
    listener = Listener(*addrs)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    seen = 0
    while not done.wait(0.05):
        while seen < len(listener.accepted):
            print(*listener.accepted[seen], flush=True)
            seen += 1
    listener.close()
    for entry in listener.accepted[seen:]:
        print(*entry, flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
