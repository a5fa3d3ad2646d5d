"""The ruleset evaluator against a real `nft -j list ruleset` document (data/sample.json, made
by nft 1.0.6 from data/sample.nft) and small hand-written ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m7guard.netpolicy.addrset import AddrSet
from m7guard.netpolicy.nftables import Probe, Ruleset, RulesetError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def rs() -> Ruleset:
    return Ruleset.from_json((DATA / "sample.json").read_text())


def nets(rs: Ruleset, probe: Probe, mode: str = "may") -> list[str]:
    return rs.accepted(probe, mode).cidrs()  # type: ignore[arg-type]


def test_base_chains_follow_the_family(rs: Ruleset) -> None:
    assert [c.label() for c in rs.base_chains(4)] == ["inet m7guard input", "ip legacy INPUT"]
    assert [c.label() for c in rs.base_chains(6)] == ["inet m7guard input"]
    assert [c.label() for c in rs.base_chains(4, "output")] == ["inet m7guard output"]


def test_named_sets_per_family(rs: Ruleset) -> None:
    assert nets(rs, Probe(4, "tcp", 22)) == ["10.0.2.2/32", "10.232.3.0/24"]
    assert nets(rs, Probe(6, "tcp", 22)) == ["fd31:232:3::/64"]
    assert nets(rs, Probe(4, "tcp", 9443)) == ["10.0.2.2/32", "10.232.3.0/24"]
    assert nets(rs, Probe(6, "tcp", 9443)) == []
    assert nets(rs, Probe(6, "tcp", 8443)) == []  # the clients' IPv6 set is empty


def test_default_deny_and_unknown_ports(rs: Ruleset) -> None:
    for family in (4, 6):
        for proto in ("tcp", "udp"):
            assert not rs.accepted(Probe(family, proto, 4444))


def test_l4proto_set_and_transport_header(rs: Ruleset) -> None:
    assert nets(rs, Probe(4, "udp", 111)) == ["10.232.1.0/24"]
    assert nets(rs, Probe(4, "tcp", 111)) == ["10.232.1.0/24"]
    assert nets(rs, Probe(6, "udp", 111)) == []


def test_negation_range_and_a_second_table(rs: Ruleset) -> None:
    # 5000-5010 from everywhere but 10.9.9.9 in the inet table ...
    everything_but = AddrSet.everything(4) - AddrSet.of(4, ["10.9.9.9"])
    assert rs.accepted(Probe(4, "tcp", 5004)) == everything_but
    # ... but the ip table drops 5005 for IPv4: both base chains must accept
    assert not rs.accepted(Probe(4, "tcp", 5005))
    # `ip saddr` matches IPv4 only, so IPv6 meets the policy drop
    assert not rs.accepted(Probe(6, "tcp", 5004))


def test_verdict_map(rs: Ruleset) -> None:
    assert nets(rs, Probe(4, "tcp", 7000)) == ["0.0.0.0/0"]
    assert not rs.accepted(Probe(4, "tcp", 7001))


def test_uncertain_interface_and_limit(rs: Ruleset) -> None:
    # iifname "eth0" cannot be decided: it may accept, it is not sure to
    assert nets(rs, Probe(4, "tcp", 6000)) == ["0.0.0.0/0"]
    assert nets(rs, Probe(4, "tcp", 6000), "sure") == []
    assert nets(rs, Probe(4, "tcp", 6200)) == ["0.0.0.0/0"]
    assert nets(rs, Probe(4, "tcp", 6200), "sure") == []


def test_jump_return_and_goto(rs: Ruleset) -> None:
    # svc returns 10.232.1.5, accepts the rest of the cluster network, drops everyone else
    accepted = rs.accepted(Probe(4, "tcp", 6100), "sure")
    assert accepted == AddrSet.of(4, ["10.232.1.0/24"]) - AddrSet.of(4, ["10.232.1.5"])
    udp = rs.accepted(Probe(4, "udp", 6300), "sure")
    assert udp == AddrSet.of(4, ["10.232.1.0/24"]) - AddrSet.of(4, ["10.232.1.5"])


def test_logging_of_drops(rs: Ruleset) -> None:
    out = rs.evaluate(Probe(4, "tcp", 4444))
    assert out.logged == AddrSet.everything(4)
    assert out.logs == {("m7guard-drop ", True)}
    # what the vmap drops never reaches the log statement
    assert not rs.evaluate(Probe(4, "tcp", 7001)).logged


def test_output_hook_uses_destinations(rs: Ruleset) -> None:
    assert nets(rs, Probe(4, "tcp", 4444, "output")) == ["10.232.1.0/24"]
    assert nets(rs, Probe(4, "udp", 53, "output")) == ["10.232.1.0/24", "192.0.2.53/32"]
    assert nets(rs, Probe(6, "tcp", 443, "output")) == []


def test_no_ruleset_accepts_everything() -> None:
    empty = Ruleset.from_json("")
    assert empty.accepted(Probe(4, "tcp", 22)) == AddrSet.everything(4)
    assert empty.accepted(Probe(6, "udp", 53, "output")) == AddrSet.everything(6)


def _doc(*rules: list[dict], policy: str = "accept") -> str:
    items: list[dict] = [
        {"table": {"family": "inet", "name": "t", "handle": 1}},
        {"chain": {"family": "inet", "table": "t", "name": "in", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": policy}},
    ]
    items += [{"rule": {"family": "inet", "table": "t", "chain": "in", "handle": i + 2,
                        "expr": exprs}} for i, exprs in enumerate(rules)]
    return json.dumps({"nftables": items})


def test_policy_accept_with_a_final_drop_is_still_default_deny() -> None:
    rs = Ruleset.from_json(_doc([{"drop": None}]))
    assert not rs.accepted(Probe(4, "tcp", 1))


def test_unknown_expression_is_uncertain_both_ways() -> None:
    odd = {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}}
    rs = Ruleset.from_json(_doc([odd, {"accept": None}], policy="drop"))
    assert rs.accepted(Probe(4, "tcp", 22)) == AddrSet.everything(4)
    assert not rs.accepted(Probe(4, "tcp", 22), "sure")
    # an undecidable drop does not shield what follows in the may reading
    rs = Ruleset.from_json(_doc([odd, {"drop": None}], [{"accept": None}], policy="drop"))
    assert rs.accepted(Probe(4, "tcp", 22)) == AddrSet.everything(4)
    assert not rs.accepted(Probe(4, "tcp", 22), "sure")


def test_bad_documents_are_refused() -> None:
    with pytest.raises(RulesetError, match="not JSON"):
        Ruleset.from_json("{nope")
    with pytest.raises(RulesetError, match="nftables"):
        Ruleset.from_json('{"other": []}')
    jump = {"jump": {"target": "missing"}}
    with pytest.raises(RulesetError, match="missing chain"):
        Ruleset.from_json(_doc([jump])).accepted(Probe(4, "tcp", 1))
