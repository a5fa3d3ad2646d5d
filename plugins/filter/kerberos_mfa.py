"""Filters of the kerberos_mfa role: network membership for the automation exemption."""

from __future__ import annotations

import ipaddress
from typing import Any


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        return None


def invalid_networks(networks: Any) -> list[str]:
    """Entries of `networks` that are not CIDR networks (host bits must be zero)."""
    if not isinstance(networks, (list, tuple)):
        return [str(networks)]
    return [str(n) for n in networks if _network(n) is None]


def address_in_networks(address: Any, networks: Any) -> bool:
    """Whether `address` (IPv4, IPv6 or IPv4-mapped IPv6) lies in one of `networks`."""
    try:
        addr = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if not isinstance(networks, (list, tuple)):
        return False
    return any((net := _network(n)) is not None and addr in net for n in networks)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kerberos_mfa_invalid_networks": invalid_networks,
            "kerberos_mfa_address_in_networks": address_in_networks,
        }
