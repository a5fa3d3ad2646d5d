"""Which addresses an nftables ruleset lets through, computed from `nft -j list ruleset`.

A *probe* is a new connection of one family (4 or 6), protocol (tcp or udp) and destination
port arriving on a non-loopback interface (`hook="input"`), or leaving the host
(`hook="output"`). `Ruleset.evaluate(probe)` walks every base filter chain on that path
(prerouting and input, or output and postrouting; `inet` tables plus `ip` or `ip6` ones),
follows jumps, gotos, returns and verdict maps, and tells which source addresses (input) or
destination addresses (output) end up accepted, and which reach a log statement.

Expressions it cannot decide for a probe (rate limits, interface names other than `lo`, the
other address field, meta marks, dynamic sets, anything unknown) are *uncertain*. Two
readings resolve them:

- `may`: every uncertain accept matches and every uncertain drop does not, so `accepted` is
  every address that *could* get through. "Only the admin networks reach port 22" is proved
  when this set lies inside them.
- `sure`: the opposite, so `accepted` holds only addresses that get through whatever the
  uncertain parts do. "The client networks reach port 8443" is proved with this one.

A packet passes only when every base chain on its path accepts it, so the per-chain results
are intersected; with no base chain at all, everything is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from m7guard.netpolicy.addrset import AddrSet, Family

Mode = Literal["may", "sure"]
Hook = Literal["input", "output"]

HOOKS: dict[str, tuple[str, ...]] = {
    "input": ("prerouting", "input"),
    "output": ("output", "postrouting"),
}
_PROTO_NUMBERS = {"tcp": 6, "udp": 17}
_L4_HEADERS = {"tcp", "udp", "th", "sctp", "dccp", "udplite"}
_MAX_DEPTH = 32


class RulesetError(ValueError):
    """The text is not the JSON output of `nft -j list ruleset`."""


@dataclass(frozen=True)
class Probe:
    family: Family
    proto: str
    port: int
    hook: Hook = "input"

    @property
    def addr_field(self) -> str:
        return "saddr" if self.hook == "input" else "daddr"

    def __str__(self) -> str:
        return f"{self.proto}/{self.port} (IPv{self.family}, {self.hook})"


@dataclass
class Rule:
    family: str
    table: str
    chain: str
    handle: int
    exprs: list[dict[str, Any]]
    comment: str = ""


@dataclass
class Chain:
    family: str
    table: str
    name: str
    type: str | None = None
    hook: str | None = None
    priority: int = 0
    policy: str = "accept"
    rules: list[Rule] = field(default_factory=list)

    @property
    def is_base(self) -> bool:
        return self.hook is not None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.family, self.table, self.name)

    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


@dataclass
class Outcome:
    """What one probe meets: the addresses accepted, and those that reach a log statement."""

    accepted: AddrSet
    logged: AddrSet
    logs: set[tuple[str, bool]] = field(default_factory=set)  # (prefix, rate limited)
    chains: list[str] = field(default_factory=list)


@dataclass
class _Walk:
    accepted: AddrSet
    dropped: AddrSet
    returned: AddrSet
    logged: AddrSet


class Ruleset:
    def __init__(self, doc: dict[str, Any]) -> None:
        items = doc.get("nftables") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise RulesetError("no top-level 'nftables' list: not `nft -j list ruleset` output")
        self.tables: list[tuple[str, str]] = []
        self.chains: dict[tuple[str, str, str], Chain] = {}
        self.sets: dict[tuple[str, str, str], dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            if "table" in item:
                t = item["table"]
                self.tables.append((t["family"], t["name"]))
            elif "chain" in item:
                c = item["chain"]
                chain = Chain(c["family"], c["table"], c["name"], c.get("type"), c.get("hook"),
                              int(c.get("prio", 0) or 0), c.get("policy", "accept"))
                self.chains[chain.key] = chain
            elif "set" in item or "map" in item:
                s = item.get("set") or item.get("map")
                self.sets[(s["family"], s["table"], s["name"])] = s
            elif "rule" in item:
                r = item["rule"]
                rule = Rule(r["family"], r["table"], r["chain"], int(r.get("handle", 0)),
                            list(r.get("expr", [])), r.get("comment", ""))
                key = (rule.family, rule.table, rule.chain)
                if key not in self.chains:
                    self.chains[key] = Chain(*key)
                self.chains[key].rules.append(rule)

    @classmethod
    def from_json(cls, text: str) -> Ruleset:
        try:
            doc = json.loads(text) if text.strip() else {"nftables": []}
        except json.JSONDecodeError as exc:
            raise RulesetError(f"not JSON: {exc}") from None
        return cls(doc)

    # -- structure --------------------------------------------------------------

    def base_chains(self, family: Family, hook: Hook = "input") -> list[Chain]:
        """Filter base chains a packet of `family` meets on the `hook` path, in priority order."""
        families = {"inet", "ip" if family == 4 else "ip6"}
        found = [
            c for c in self.chains.values()
            if c.is_base and c.type == "filter" and c.family in families
            and c.hook in HOOKS[hook]
        ]
        return sorted(found, key=lambda c: (HOOKS[hook].index(c.hook or ""), c.priority))

    def table_names(self) -> list[str]:
        return [f"{fam} {name}" for fam, name in self.tables]

    # -- evaluation -------------------------------------------------------------

    def evaluate(self, probe: Probe, mode: Mode = "may") -> Outcome:
        everything = AddrSet.everything(probe.family)
        chains = self.base_chains(probe.family, probe.hook)
        accepted, logged, logs = everything, AddrSet.empty(probe.family), set[tuple[str, bool]]()
        for chain in chains:
            walk = _Evaluator(self, probe, mode, logs).run(chain, everything, 0)
            passed = walk.accepted
            if chain.policy == "accept":
                passed = passed | walk.returned
            accepted = accepted & passed
            logged = logged | walk.logged
        return Outcome(accepted, logged, logs, [c.label() for c in chains])

    def accepted(self, probe: Probe, mode: Mode = "may") -> AddrSet:
        return self.evaluate(probe, mode).accepted


def _resolve_set(ruleset: Ruleset, chain: Chain, name: str) -> dict[str, Any] | None:
    return ruleset.sets.get((chain.family, chain.table, name))


def _elements(value: Any) -> Iterator[Any]:
    """The elements of a set literal, `{"set": [...]}`, a list, or a single value."""
    if isinstance(value, dict) and "set" in value:
        value = value["set"]
    if isinstance(value, list):
        for v in value:
            yield v["elem"]["val"] if isinstance(v, dict) and "elem" in v else v
    else:
        yield value


class _Undecided(Exception):
    """This match cannot be decided for the probe."""


class _Evaluator:
    def __init__(self, ruleset: Ruleset, probe: Probe, mode: Mode,
                 logs: set[tuple[str, bool]]) -> None:
        self.rs = ruleset
        self.probe = probe
        self.mode = mode
        self.logs = logs
        self.family = probe.family

    def empty(self) -> AddrSet:
        return AddrSet.empty(self.family)

    # -- chains -----------------------------------------------------------------

    def run(self, chain: Chain, incoming: AddrSet, depth: int) -> _Walk:
        if depth > _MAX_DEPTH:
            raise RulesetError(f"jumps nest deeper than {_MAX_DEPTH} chains at {chain.label()}")
        walk = _Walk(self.empty(), self.empty(), self.empty(), self.empty())
        remaining = incoming
        for rule in chain.rules:
            if not remaining:
                break
            remaining = self._rule(chain, rule, remaining, walk, depth)
        walk.returned = walk.returned | remaining
        if chain.is_base and chain.policy == "drop":
            walk.dropped = walk.dropped | walk.returned
        return walk

    def _rule(self, chain: Chain, rule: Rule, remaining: AddrSet, walk: _Walk,
              depth: int) -> AddrSet:
        matched = remaining
        certain = True  # every match so far decided (true) for `matched`
        only_limits = True  # the undecided ones, if any, were rate limits
        limited = False
        for expr in rule.exprs:
            kind = next(iter(expr), "")
            body = expr.get(kind)
            if kind == "match":
                try:
                    cond = self._match(chain, body)
                except _Undecided:
                    certain, only_limits = False, False
                    continue
                if cond is False:
                    return remaining
                if isinstance(cond, AddrSet):
                    matched = matched & cond
                    if not matched:
                        return remaining
            elif kind == "limit":
                certain, limited = False, True
            elif kind == "log":
                if certain or only_limits:
                    walk.logged = walk.logged | matched
                    prefix = body.get("prefix", "") if isinstance(body, dict) else ""
                    self.logs.add((str(prefix), limited))
            elif kind in ("counter", "comment", "meter", "mangle", "notrack", "xt"):
                if kind == "xt":
                    certain, only_limits = False, False
            elif kind == "vmap":
                return self._vmap(chain, body, remaining, matched, certain, walk, depth)
            elif kind in ("accept", "drop", "reject", "queue", "jump", "goto", "return"):
                return self._verdict(expr, remaining, matched, certain, walk, depth, chain)
            elif kind == "continue":
                return remaining
            else:
                certain, only_limits = False, False
        return remaining

    def _verdict(self, verdict: dict[str, Any], remaining: AddrSet, matched: AddrSet,
                 certain: bool, walk: _Walk, depth: int, chain: Chain) -> AddrSet:
        kind = next(iter(verdict))
        if kind == "queue":  # a userspace program decides: it might accept
            kind = "accept" if self.mode == "may" else "drop"
            certain = True
        if kind == "accept":
            if certain or self.mode == "may":
                walk.accepted = walk.accepted | matched
                return remaining - matched if certain else remaining
            return remaining
        if kind in ("drop", "reject"):
            if certain or self.mode == "sure":
                walk.dropped = walk.dropped | matched
                return remaining - matched
            return remaining
        if kind == "return":
            if certain:
                walk.returned = walk.returned | matched
                return remaining - matched
            return remaining
        target = verdict[kind].get("target") if isinstance(verdict[kind], dict) else None
        sub_chain = self.rs.chains.get((chain.family, chain.table, str(target)))
        if sub_chain is None:
            raise RulesetError(f"{chain.label()} jumps to a missing chain {target!r}")
        sub = self.run(sub_chain, matched, depth + 1)
        walk.logged = walk.logged | sub.logged
        if certain:
            walk.accepted = walk.accepted | sub.accepted
            walk.dropped = walk.dropped | sub.dropped
            if kind == "goto":
                walk.returned = walk.returned | sub.returned
                return remaining - matched
            return (remaining - matched) | sub.returned
        if self.mode == "may":  # the packet may or may not take the jump
            walk.accepted = walk.accepted | sub.accepted
            return remaining
        walk.dropped = walk.dropped | sub.dropped
        return remaining - sub.dropped

    def _vmap(self, chain: Chain, body: dict[str, Any], remaining: AddrSet, matched: AddrSet,
              certain: bool, walk: _Walk, depth: int) -> AddrSet:
        data = body.get("data")
        if isinstance(data, str) and data.startswith("@"):
            named = _resolve_set(self.rs, chain, data[1:]) or {}
            pairs = named.get("elem", [])
        else:
            pairs = list(_elements(data))
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2 or not remaining:
                continue
            key, verdict = pair
            try:
                cond = self._match(chain, {"op": "==", "left": body.get("key"), "right": key})
                ok = certain
            except _Undecided:
                cond, ok = True, False
            if cond is False:
                continue
            subset = matched & cond if isinstance(cond, AddrSet) else matched
            if subset:
                remaining = self._verdict(verdict, remaining, subset, ok, walk, depth, chain)
        return remaining

    # -- matches ------------------------------------------------------------------

    def _match(self, chain: Chain, body: dict[str, Any]) -> AddrSet | bool:
        """True/False when decided for the probe, an AddrSet when it depends on the address;
        raises _Undecided otherwise."""
        op = body.get("op", "==")
        left, right = body.get("left"), body.get("right")
        if not isinstance(left, dict):
            raise _Undecided
        if "payload" in left:
            return self._payload(chain, op, left["payload"], right)
        if "meta" in left:
            return self._meta(op, left["meta"].get("key"), right, chain)
        if "ct" in left and left["ct"].get("key") == "state" and "dir" not in left["ct"]:
            states = {str(v) for v in _elements(right)}
            if op in ("==", "in"):
                return "new" in states
            if op == "!=":
                return "new" not in states
        raise _Undecided

    def _payload(self, chain: Chain, op: str, payload: dict[str, Any], right: Any
                 ) -> AddrSet | bool:
        proto, fld = payload.get("protocol"), payload.get("field")
        probe = self.probe
        if proto in ("ip", "ip6"):
            fam = 4 if proto == "ip" else 6
            if fam != probe.family:
                return False
            if fld == probe.addr_field:
                cond = self._addresses(chain, right)
                if op in ("==", "in"):
                    return cond
                if op == "!=":
                    return cond.complement()
                raise _Undecided
            if fld in ("protocol", "nexthdr"):
                return self._compare(op, probe.proto, right, chain, proto_field=True)
            raise _Undecided
        if proto in _L4_HEADERS:
            if proto not in ("th", probe.proto):
                return False
            if fld == "dport":
                return self._compare(op, probe.port, right, chain)
            raise _Undecided
        if proto in ("icmp", "icmpv6", "igmp", "ah", "esp", "comp"):
            return False
        raise _Undecided

    def _meta(self, op: str, key: str | None, right: Any, chain: Chain) -> bool:
        probe = self.probe
        if key == "l4proto":
            return self._compare(op, probe.proto, right, chain, proto_field=True)
        if key == "nfproto":
            names = {str(v) for v in _elements(right)}
            hit = f"ipv{probe.family}" in names
            return _apply(op, hit)
        if key == "protocol":  # the ethertype
            names = {str(v) for v in _elements(right)}
            hit = ("ip" if probe.family == 4 else "ip6") in names
            return _apply(op, hit)
        own = ("iifname", "iif") if probe.hook == "input" else ("oifname", "oif")
        if key in own:
            names = {str(v) for v in _elements(right)}
            if names == {"lo"}:
                return _apply(op, False)
            raise _Undecided
        raise _Undecided

    def _compare(self, op: str, value: int | str, right: Any, chain: Chain,
                 proto_field: bool = False) -> bool:
        """Whether a port (or protocol) is in `right` under `op`."""
        if isinstance(right, str) and right.startswith("@"):
            named = _resolve_set(self.rs, chain, right[1:])
            if named is None or "dynamic" in named.get("flags", []):
                raise _Undecided
            items = list(_elements(named.get("elem", [])))
        else:
            items = list(_elements(right))
        hit = any(_contains(item, value, proto_field) for item in items)
        if op in ("<", ">", "<=", ">=") and len(items) == 1 and isinstance(items[0], int):
            number = value if isinstance(value, int) else _PROTO_NUMBERS.get(value, -1)
            bound = items[0]
            return {"<": number < bound, ">": number > bound,
                    "<=": number <= bound, ">=": number >= bound}[op]
        return _apply(op, hit)

    def _addresses(self, chain: Chain, right: Any) -> AddrSet:
        if isinstance(right, str) and right.startswith("@"):
            named = _resolve_set(self.rs, chain, right[1:])
            if named is None or "dynamic" in named.get("flags", []) or "timeout" in named:
                raise _Undecided
            items: Iterable[Any] = _elements(named.get("elem", []))
        else:
            items = _elements(right)
        out = self.empty()
        for item in items:
            out = out | _addr_item(self.family, item)
        return out


def _apply(op: str, hit: bool) -> bool:
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    raise _Undecided


def _contains(item: Any, value: int | str, proto_field: bool) -> bool:
    if proto_field:
        names = {value, _PROTO_NUMBERS.get(str(value), -1)}
        return item in names or str(item) in {str(n) for n in names}
    if isinstance(item, dict) and "range" in item:
        lo, hi = item["range"]
        return int(lo) <= int(value) <= int(hi)
    try:
        return int(item) == int(value)
    except (TypeError, ValueError):
        raise _Undecided from None


def _addr_item(family: Family, item: Any) -> AddrSet:
    if isinstance(item, dict) and "prefix" in item:
        p = item["prefix"]
        return AddrSet.of(family, [f"{p['addr']}/{p['len']}"])
    if isinstance(item, dict) and "range" in item:
        lo, hi = item["range"]
        if (":" in str(lo)) != (family == 6):
            return AddrSet.empty(family)
        return AddrSet.span(family, str(lo), str(hi))
    if isinstance(item, str):
        if (":" in item) != (family == 6):
            return AddrSet.empty(family)
        return AddrSet.of(family, [item])
    raise _Undecided
