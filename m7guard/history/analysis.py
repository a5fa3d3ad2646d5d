"""Compliance over time: pass rates per audit, finding lifecycles, waivers about to expire.

How each state counts (the same everywhere: `history show`, its JSON and the HTML chart):

- pass rate = passed / evaluated, where evaluated = pass + fail + error + waived. An error is
  a result that did not pass; a waived result is an accepted exception, never a pass, so it
  stays in the denominator (waiving a failure does not raise the rate). notapplicable and
  notchecked (not assessed) are in neither count. No evaluated result: no rate (None).
- lifecycle of a (host, rule) over the audits that have a result for it, oldest first:
  fail and error are failing; pass is passing; waived, notapplicable and notchecked neither
  open nor close a finding (the event is shown with its state as its status).
    new         failing, and it never failed before
    persisting  failing, and it has not passed since it last failed (normally: it failed in
                the previous audit too)
    fixed       passing, and it was failing (the finding is closed)
    reopened    failing, it failed before and was fixed since
    pass        passing, with no open finding
  A finding (episode) opens at `new` or `reopened` and closes at `fixed`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m7guard.history.store import Audit, History, HistoryError
from m7guard.results import FAILING_STATES, STATES, Results

EVALUATED_STATES = frozenset({"pass", "fail", "error", "waived"})
LIFECYCLE_STATUSES = ("new", "persisting", "fixed", "reopened", "pass")


@dataclass(frozen=True)
class Rate:
    """The pass rate of a set of results (see the module docstring)."""

    passed: int
    evaluated: int
    counts: dict[str, int]

    @classmethod
    def of(cls, states: Iterable[str]) -> Rate:
        counter = Counter(states)
        return cls(
            passed=counter["pass"],
            evaluated=sum(counter[s] for s in EVALUATED_STATES),
            counts={s: counter.get(s, 0) for s in STATES},
        )

    @property
    def rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "passed": self.passed,
            "evaluated": self.evaluated,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class Snapshot:
    """What the analysis needs of one audit, from the database or from a results file."""

    audit: Audit
    frameworks: dict[str, str]  # id -> title
    rule_frameworks: dict[str, frozenset[str]]  # rule -> frameworks it references
    rules: dict[str, tuple[str, str]]  # rule -> (title, severity)
    results: list[tuple[str, str, str, str | None]]  # host, rule, state, waiver_expires


def snapshot_of(results: Results, audit_id: int = 0, sha256: str = "") -> Snapshot:
    """A snapshot of a results document that is not (or not yet) in the history."""
    data = results.data
    audit = Audit(
        id=audit_id,
        started=data["started"],
        finished=data["finished"],
        profile=data["profile"]["id"],
        profile_title=data["profile"]["title"],
        inventory=data["inventory"],
        tool_version=data["tool"]["version"],
        catalog_version="",
        catalog_digest="",
        source_sha256=sha256,
        source="",
    )
    frameworks = {
        fw: str(data["frameworks"].get(fw, {}).get("title", fw))
        for fw in dict.fromkeys([*data["profile"]["frameworks"], *data["frameworks"]])
    }
    return Snapshot(
        audit=audit,
        frameworks=frameworks,
        rule_frameworks={
            rid: frozenset(fw for fw, ids in r["references"].items() if ids)
            for rid, r in data["rules"].items()
        },
        rules={rid: (r["title"], r["severity"]) for rid, r in data["rules"].items()},
        results=[
            (
                r["host"],
                r["rule"],
                r["state"],
                (r.get("waiver") or {}).get("expires") if r["state"] == "waived" else None,
            )
            for r in data["results"]
        ],
    )


def load_snapshots(history: History, profile: str | None = None) -> list[Snapshot]:
    """Every recorded audit (of profile, if given), oldest first."""
    conn = history.conn
    out = []
    for audit in history.audits(profile):
        frameworks = {
            fw: title
            for fw, title in conn.execute(
                "SELECT framework, title FROM frameworks WHERE audit_id = ? ORDER BY rowid",
                (audit.id,),
            )
        }
        rule_frameworks: dict[str, set[str]] = {}
        rules = {}
        for rid, title, severity in conn.execute(
            "SELECT rule, title, severity FROM rules WHERE audit_id = ?", (audit.id,)
        ):
            rules[rid] = (title, severity)
            rule_frameworks.setdefault(rid, set())
        for rid, fw in conn.execute(
            "SELECT DISTINCT rule, framework FROM controls WHERE audit_id = ?", (audit.id,)
        ):
            rule_frameworks.setdefault(rid, set()).add(fw)
        results = [
            tuple(row)
            for row in conn.execute(
                "SELECT host, rule, state, waiver_expires FROM results WHERE audit_id = ?"
                " ORDER BY host, rule",
                (audit.id,),
            )
        ]
        out.append(
            Snapshot(
                audit=audit,
                frameworks=frameworks,
                rule_frameworks={k: frozenset(v) for k, v in rule_frameworks.items()},
                rules=rules,
                results=results,  # type: ignore[arg-type]
            )
        )
    return out


@dataclass(frozen=True)
class Filters:
    framework: str | None = None
    rule: str | None = None
    host: str | None = None
    profile: str | None = None

    def keep(self, snap: Snapshot, host: str, rule: str) -> bool:
        if self.host is not None and host != self.host:
            return False
        if self.rule is not None and rule != self.rule:
            return False
        return self.framework is None or self.framework in snap.rule_frameworks.get(rule, ())

    def to_dict(self) -> dict[str, str | None]:
        return dict(self.__dict__)


def framework_series(
    snapshots: list[Snapshot], filters: Filters = Filters()
) -> dict[str, dict[str, Any]]:
    """framework -> {title, points: [(audit, Rate)]} over the audits that include it."""
    out: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        for fw, title in snap.frameworks.items():
            if filters.framework is not None and fw != filters.framework:
                continue
            states = [
                state
                for host, rule, state, _ in snap.results
                if fw in snap.rule_frameworks.get(rule, ()) and filters.keep(snap, host, rule)
            ]
            entry = out.setdefault(fw, {"title": title, "points": []})
            entry["title"] = title
            entry["points"].append((snap.audit, Rate.of(states)))
    return out


def rule_series(
    snapshots: list[Snapshot], filters: Filters = Filters()
) -> dict[str, dict[str, Any]]:
    """rule -> {title, severity, points: [(audit, Rate)]} over the audits that evaluated it."""
    by_rule: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        states: dict[str, list[str]] = {}
        for host, rule, state, _ in snap.results:
            if filters.keep(snap, host, rule):
                states.setdefault(rule, []).append(state)
        for rule in sorted(states):
            title, severity = snap.rules.get(rule, (rule, "medium"))
            entry = by_rule.setdefault(rule, {"points": []})
            entry.update(title=title, severity=severity)
            entry["points"].append((snap.audit, Rate.of(states[rule])))
    return dict(sorted(by_rule.items()))


@dataclass(frozen=True)
class Event:
    audit_id: int
    started: str
    state: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Episode:
    """One finding: from the audit it appeared in (new or reopened) to the one it was fixed in."""

    opened_audit: int
    opened: str
    reopened: bool
    fixed_audit: int | None = None
    fixed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Lifecycle:
    host: str
    rule: str
    events: list[Event] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        return [e.status for e in self.events]

    @property
    def current(self) -> str | None:
        return self.events[-1].status if self.events else None

    @property
    def open(self) -> bool:
        return bool(self.episodes) and self.episodes[-1].fixed is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "rule": self.rule,
            "current": self.current,
            "open": self.open,
            "first_failed": self.episodes[0].opened if self.episodes else None,
            "timeline": [e.to_dict() for e in self.events],
            "episodes": [e.to_dict() for e in self.episodes],
        }


def walk(host: str, rule: str, states: Iterable[tuple[int, str, str]]) -> Lifecycle:
    """The lifecycle of (host, rule) from its (audit id, started, state), oldest first."""
    life = Lifecycle(host, rule)
    current: Episode | None = None
    failed_before = False
    for audit_id, started, state in states:
        if state in FAILING_STATES:
            if current is not None:
                status = "persisting"
            else:
                status = "reopened" if failed_before else "new"
                current = Episode(audit_id, started, reopened=failed_before)
                life.episodes.append(current)
            failed_before = True
        elif state == "pass":
            if current is not None:
                status = "fixed"
                current.fixed_audit, current.fixed = audit_id, started
                current = None
            else:
                status = "pass"
        else:  # waived, notapplicable, notchecked: a finding neither opens nor closes
            status = state
        life.events.append(Event(audit_id, started, state, status))
    return life


def lifecycles(snapshots: list[Snapshot], filters: Filters = Filters()) -> list[Lifecycle]:
    """The lifecycle of every (host, rule) the filters keep, sorted by rule then host."""
    cells: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
    for snap in snapshots:
        for host, rule, state, _ in snap.results:
            if filters.keep(snap, host, rule):
                cells.setdefault((host, rule), []).append(
                    (snap.audit.id, snap.audit.started, state)
                )
    return [
        walk(host, rule, cells[(host, rule)])
        for host, rule in sorted(cells, key=lambda k: (k[1], k[0]))
    ]


def lifecycle(
    db: Path | str | History, host: str, rule: str, profile: str | None = None
) -> Lifecycle:
    """The lifecycle of one (host, rule) across the recorded audits (of profile, if given).

    `lifecycle(db, "node1", "KERN-001").statuses` is e.g. ["new", "fixed", "reopened"].
    """
    if isinstance(db, History):
        snaps = load_snapshots(db, profile)
    else:
        with History.open(Path(db)) as history:
            snaps = load_snapshots(history, profile)
    found = lifecycles(snaps, Filters(rule=rule, host=host))
    if not found:
        raise HistoryError(f"no recorded result for rule {rule} on host {host}")
    return found[0]


@dataclass(frozen=True)
class ExpiringWaiver:
    host: str
    rule: str
    expires: str
    days_left: int
    audit_id: int
    started: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def expiring_waivers(
    snapshots: list[Snapshot], as_of: dt.date, days: int, filters: Filters = Filters()
) -> list[ExpiringWaiver]:
    """(host, rule) whose latest recorded result is waived under a waiver that expires within
    `days` of as_of (already expired ones too: negative days_left), soonest first."""
    latest: dict[tuple[str, str], tuple[Snapshot, str, str | None]] = {}
    for snap in snapshots:
        for host, rule, state, expires in snap.results:
            if filters.keep(snap, host, rule):
                latest[(host, rule)] = (snap, state, expires)
    out = []
    for (host, rule), (snap, state, expires) in latest.items():
        if state != "waived" or not expires:
            continue
        try:
            left = (dt.date.fromisoformat(expires) - as_of).days
        except ValueError:
            continue
        if left <= days:
            out.append(ExpiringWaiver(host, rule, expires, left, snap.audit.id, snap.audit.started))
    return sorted(out, key=lambda w: (w.expires, w.rule, w.host))


def newest_date(snapshots: list[Snapshot]) -> dt.date | None:
    if not snapshots:
        return None
    return dt.date.fromisoformat(max(s.audit.started for s in snapshots)[:10])
