"""How much of the internet a network holds: the rule behind "open to the world".

An allow-list entry is as good as the world when it holds more publicly routable addresses
than one network of a minimum prefix length (by default a /16 for IPv4 and a /32 for IPv6,
one organisation's allocation at most): 0.0.0.0/0 and ::/0, but also 0.0.0.0/1, 64.0.0.0/2,
a public /8 or 2000::/3. Private and other non-routable space (10.0.0.0/8, 172.16.0.0/12,
fd00::/8, ...) holds no public address however wide it is.
"""

from __future__ import annotations

import ipaddress
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MIN_PREFIX_V4 = 16
DEFAULT_MIN_PREFIX_V6 = 32

# Address space the internet cannot reach: the special-purpose blocks of RFC 6890 that are
# not globally reachable, multicast and reserved. Everything else is public.
_NOT_PUBLIC_V4 = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
# IPv6: global unicast is 2000::/3 (less the documentation block); IPv4-mapped addresses
# (::ffff:0:0/96) stand for the IPv4 addresses they map.
_GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")
_NOT_PUBLIC_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)
_MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")


def _without(nets: list[Any], holes: tuple[Any, ...]) -> list[Any]:
    for hole in holes:
        kept = []
        for net in nets:
            if not net.overlaps(hole):
                kept.append(net)
            elif not net.subnet_of(hole):  # the hole lies inside net
                kept.extend(net.address_exclude(hole))
        nets = kept
    return nets


def _inside(net: Any, within: Any) -> list[Any]:
    """The part of net inside within (CIDR blocks nest or do not meet)."""
    if net.subnet_of(within):
        return [net]
    return [within] if within.subnet_of(net) else []


def public_addresses(net: Network) -> int:
    """How many publicly routable addresses a network holds (for IPv6, its global unicast
    addresses; the IPv4 addresses it maps are counted by mapped_ipv4)."""
    if net.version == 4:
        return sum(n.num_addresses for n in _without([net], _NOT_PUBLIC_V4))
    return sum(n.num_addresses for n in _without(_inside(net, _GLOBAL_V6), _NOT_PUBLIC_V6))


def mapped_ipv4(net: Network) -> ipaddress.IPv4Network | None:
    """The IPv4 network an IPv6 network maps (::ffff:0:0/96), if it maps any."""
    if net.version == 4:
        return None
    for part in _inside(net, _MAPPED_V4):
        return ipaddress.IPv4Network((int(part.network_address) & 0xFFFFFFFF, part.prefixlen - 96))
    return None


def world_open(net: Network, min_prefix_v4: int = DEFAULT_MIN_PREFIX_V4,
               min_prefix_v6: int = DEFAULT_MIN_PREFIX_V6) -> bool:
    """A network is as good as the world when it holds more public addresses than one
    network of the minimum prefix length: 0.0.0.0/0, but also 0.0.0.0/1, 64.0.0.0/2 or a
    public /8 (and ::ffff:0:0/96, which maps all of IPv4). Private space (10.0.0.0/8,
    fd00::/8) holds no public address, however wide."""
    mapped = mapped_ipv4(net)
    if mapped is not None and world_open(mapped, min_prefix_v4, min_prefix_v6):
        return True
    min_prefix = min_prefix_v4 if net.version == 4 else min_prefix_v6
    return public_addresses(net) > 2 ** (net.max_prefixlen - min_prefix)
