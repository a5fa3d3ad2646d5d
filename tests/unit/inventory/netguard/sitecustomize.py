"""Imported at start-up by every Python process a test runs with this directory first on
PYTHONPATH: any connection or name lookup beyond the loopback is refused and written to
$M7GUARD_NETGUARD_LOG, so a test can prove that nothing left 127.0.0.1."""

from __future__ import annotations

import ipaddress
import os
import socket

_LOG = os.environ.get("M7GUARD_NETGUARD_LOG")
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo
_INET = (socket.AF_INET, socket.AF_INET6)


def _loopback(host: object) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> OSError:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {what}\n")
    return OSError(f"netguard: {what} refused, tests stay on 127.0.0.1")


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in _INET and not _loopback(address[0]):  # type: ignore[index]
        raise _refuse(f"connect {address!r}")
    return _connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in _INET and not _loopback(address[0]):  # type: ignore[index]
        raise _refuse(f"connect {address!r}")
    return _connect_ex(self, address)  # type: ignore[arg-type]


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
    if not _loopback(host):
        raise _refuse(f"lookup {host!r}")
    return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
