#!/usr/bin/env python3
"""A slow network in front of a UDP server: every datagram to ``--listen`` reaches ``--to``
``--delay`` seconds later, and its answers come back at once. Used to make a real DNS server
slower than the stub systemctl, so that an ordering test cannot pass by luck.

    udp_delay.py --listen 127.0.0.1:5354 --to 127.0.0.1:5353 --delay 0.5
"""

import argparse
import select
import socket
import threading
import time


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--delay", type=float, default=0.5)
    a = ap.parse_args()
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(hostport(a.listen))
    target = hostport(a.to)
    backs = {}  # client address -> socket towards the server
    lock = threading.Lock()
    print("listening on", a.listen, flush=True)

    def later(data, client):
        time.sleep(a.delay)
        with lock:
            s = backs.get(client)
            if s is None:
                s = backs[client] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(data, target)

    while True:
        with lock:
            socks = [front, *backs.values()]
        ready, _, _ = select.select(socks, [], [], 0.1)
        for s in ready:
            data, addr = s.recvfrom(65535)
            if s is front:
                threading.Thread(target=later, args=(data, addr), daemon=True).start()
            else:
                client = next(c for c, b in backs.items() if b is s)
                front.sendto(data, client)


if __name__ == "__main__":
    main()
