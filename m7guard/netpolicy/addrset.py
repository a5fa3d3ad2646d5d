"""Sets of IP addresses of one family, kept as sorted, disjoint, inclusive integer intervals."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Family = int  # 4 or 6

_BITS = {4: 32, 6: 128}


def family_of(text: str) -> Family:
    """4 or 6 for an address or network written as text."""
    return ipaddress.ip_network(text, strict=False).version


@dataclass(frozen=True)
class AddrSet:
    family: Family
    intervals: tuple[tuple[int, int], ...] = ()

    # -- construction -----------------------------------------------------------

    @classmethod
    def empty(cls, family: Family) -> AddrSet:
        return cls(family)

    @classmethod
    def everything(cls, family: Family) -> AddrSet:
        return cls(family, ((0, (1 << _BITS[family]) - 1),))

    @classmethod
    def of(cls, family: Family, items: Iterable[str]) -> AddrSet:
        """The union of networks/addresses (CIDR text); items of the other family are ignored."""
        spans = []
        for item in items:
            net = ipaddress.ip_network(item, strict=False)
            if net.version == family:
                spans.append((int(net.network_address), int(net.broadcast_address)))
        return cls(family, _normalize(spans))

    @classmethod
    def span(cls, family: Family, first: str, last: str) -> AddrSet:
        lo, hi = int(ipaddress.ip_address(first)), int(ipaddress.ip_address(last))
        return cls(family, _normalize([(min(lo, hi), max(lo, hi))]))

    # -- algebra ----------------------------------------------------------------

    def union(self, other: AddrSet) -> AddrSet:
        self._same(other)
        return AddrSet(self.family, _normalize([*self.intervals, *other.intervals]))

    def complement(self) -> AddrSet:
        top = (1 << _BITS[self.family]) - 1
        out: list[tuple[int, int]] = []
        nxt = 0
        for lo, hi in self.intervals:
            if lo > nxt:
                out.append((nxt, lo - 1))
            nxt = hi + 1
        if nxt <= top:
            out.append((nxt, top))
        return AddrSet(self.family, tuple(out))

    def intersect(self, other: AddrSet) -> AddrSet:
        self._same(other)
        out: list[tuple[int, int]] = []
        a, b = self.intervals, other.intervals
        i = j = 0
        while i < len(a) and j < len(b):
            lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if lo <= hi:
                out.append((lo, hi))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return AddrSet(self.family, tuple(out))

    def minus(self, other: AddrSet) -> AddrSet:
        return self.intersect(other.complement())

    def __or__(self, other: AddrSet) -> AddrSet:
        return self.union(other)

    def __and__(self, other: AddrSet) -> AddrSet:
        return self.intersect(other)

    def __sub__(self, other: AddrSet) -> AddrSet:
        return self.minus(other)

    # -- questions ----------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def issubset(self, other: AddrSet) -> bool:
        return not (self - other)

    def covers(self, other: AddrSet) -> bool:
        return other.issubset(self)

    def cidrs(self) -> list[str]:
        """The set as the shortest list of CIDR networks (for messages and evidence)."""
        cls = ipaddress.IPv4Address if self.family == 4 else ipaddress.IPv6Address
        out: list[str] = []
        for lo, hi in self.intervals:
            out += [str(n) for n in ipaddress.summarize_address_range(cls(lo), cls(hi))]
        return out

    def describe(self, limit: int = 6) -> str:
        """Short text: the networks, or "every address except ..." when that is shorter."""
        if not self:
            return "no address"
        nets, holes = self.cidrs(), self.complement().cidrs()
        if holes and len(holes) < len(nets):
            return "every address except " + _listed(holes, limit)
        return _listed(nets, limit)

    def _same(self, other: AddrSet) -> None:
        if other.family != self.family:
            raise ValueError(f"IPv{self.family} and IPv{other.family} sets cannot be combined")


def _normalize(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _listed(nets: list[str], limit: int) -> str:
    text = ", ".join(nets[:limit])
    return text + (f" and {len(nets) - limit} more networks" if len(nets) > limit else "")
