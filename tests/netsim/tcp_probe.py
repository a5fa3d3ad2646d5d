#!/usr/bin/env python3
"""TCP reachability probe: a test fixture run on a lab host (or the controller).

Runs on the lab hosts' own python3, 3.9 (Debian 11) and later. Reads a JSON list of
[address, port] targets on stdin, connects to all of them at once with
a timeout, and prints a JSON object mapping "address port" to "open" (connected), "refused"
(a reset: the port is reachable but nothing listens) or "timeout" (dropped on the way).

    echo '[["10.232.2.11", 7222]]' | tcp_probe.py [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor


def probe(target: tuple[str, int], timeout: float) -> str:
    address, port = target
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            return "refused"
        except (TimeoutError, socket.timeout):  # distinct classes before Python 3.10
            return "timeout"
        except OSError as exc:
            return f"error: {exc.strerror or exc}"
    return "open"


def run(targets: list[tuple[str, int]], timeout: float) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=max(1, min(256, len(targets)))) as pool:
        results = list(pool.map(lambda t: probe(t, timeout), targets))
    # zip's strict=True is Python 3.10: Debian 11's lab node runs this on 3.9
    assert len(results) == len(targets)
    return {f"{a} {p}": r for (a, p), r in zip(targets, results)}


def main(argv: list[str]) -> int:
    timeout = float(argv[0]) if argv else 2.0
    targets = [(str(a), int(p)) for a, p in json.load(sys.stdin)]
    print(json.dumps(run(targets, timeout), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
