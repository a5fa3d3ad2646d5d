#!/usr/bin/env python3
"""Data Fabric service simulator: a test fixture, not a service.

MapR cannot be installed in the lab, so this stands in for its daemons on a data node: it
listens on the given TCP ports (IPv4 and IPv6, all addresses), answers each connection with
a one-line banner naming the port, and closes it. The reachability tests connect to these
ports from other lab hosts; the node's own firewall decides which connections arrive.

    service_simulator.py PORT [PORT ...]
"""

from __future__ import annotations

import selectors
import socket
import sys


def listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def main(argv: list[str]) -> int:
    ports = sorted({int(a) for a in argv})
    if not ports:
        print("usage: service_simulator.py PORT [PORT ...]", file=sys.stderr)
        return 2
    sel = selectors.DefaultSelector()
    for port in ports:
        sel.register(listen(port), selectors.EVENT_READ, port)
    print(f"simulating Data Fabric services on TCP {', '.join(map(str, ports))}", flush=True)
    while True:
        for key, _ in sel.select():
            try:
                conn, _addr = key.fileobj.accept()  # type: ignore[union-attr]
            except OSError:
                continue
            try:
                conn.sendall(f"m7guard-simulator {key.data}\n".encode())
            except OSError:
                pass
            finally:
                conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
