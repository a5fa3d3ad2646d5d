"""Address sets: the interval algebra the firewall evaluation rests on."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from m7guard.netpolicy.addrset import AddrSet


def test_union_merges_adjacent_and_overlapping_networks() -> None:
    s = AddrSet.of(4, ["10.0.0.0/25", "10.0.0.128/25", "10.0.0.7"])
    assert s.cidrs() == ["10.0.0.0/24"]


def test_complement_and_difference() -> None:
    every = AddrSet.everything(4)
    admin = AddrSet.of(4, ["10.232.3.0/24"])
    assert (every - admin) | admin == every
    assert not (admin & admin.complement())
    assert admin.issubset(every) and not every.issubset(admin)
    assert AddrSet.everything(6).cidrs() == ["::/0"]


def test_families_do_not_mix() -> None:
    v4 = AddrSet.of(4, ["10.0.0.0/8", "fd00::/8"])
    assert v4.cidrs() == ["10.0.0.0/8"]
    with pytest.raises(ValueError, match="cannot be combined"):
        v4 | AddrSet.of(6, ["fd00::/8"])


def test_describe_is_short() -> None:
    s = AddrSet.of(4, [f"10.0.{i}.1" for i in range(0, 20, 2)])
    assert s.describe(2).endswith("and 8 more networks")
    assert AddrSet.empty(4).describe() == "no address"
    most = AddrSet.everything(4) - AddrSet.of(4, ["10.232.1.0/24", "10.232.3.0/24"])
    assert most.describe() == "every address except 10.232.1.0/24, 10.232.3.0/24"


nets = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False))
    ),
    max_size=6,
)


@given(nets, nets, st.integers(0, 2**32 - 1))
def test_algebra_matches_membership(a: list[str], b: list[str], probe: int) -> None:
    sa, sb = AddrSet.of(4, a), AddrSet.of(4, b)
    addr = ipaddress.IPv4Address(probe)
    in_a = any(addr in ipaddress.ip_network(n) for n in a)
    in_b = any(addr in ipaddress.ip_network(n) for n in b)
    one = AddrSet.of(4, [str(addr)])
    assert one.issubset(sa | sb) == (in_a or in_b)
    assert one.issubset(sa & sb) == (in_a and in_b)
    assert one.issubset(sa - sb) == (in_a and not in_b)
