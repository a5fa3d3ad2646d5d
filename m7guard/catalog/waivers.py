"""Waivers: accepted exceptions to a rule on some hosts, with a reason, an expiry and an approver.

Waivers are controller-side: they come only from a waivers file the operator passes
(`m7guard audit --waivers FILE`, see policies/waivers.example.yml). Every waiver names an
approver and an expiry no further from the audit day than the catalog allows for the rule's
severity (policies/waiver_policy.yml, `max_days`); a longer one makes the file invalid.

A host cannot waive a rule for itself. A role that knowingly leaves a rule unmet (for
example an automation account exempt from MFA) may record the exemption on the host
(/etc/ansible/facts.d/m7guard_waivers.fact, `{"waivers": [{rule, justification, expires,
approver}]}`): the audit reads it as a claim, evidence to cross-check, and reports it with
the result, but the rule is still evaluated and counted as what the check found unless the
controller's waivers file waives it.

A waiver whose expiry date has passed does not waive: the rule is evaluated normally and the
audit reports a warning.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m7guard.catalog.errors import CatalogError, Problem
from m7guard.catalog.loader import display_path, read_yaml, schema_problems
from m7guard.catalog.model import SEVERITIES, Catalog

HOST_FACT_PATH = "/etc/ansible/facts.d/m7guard_waivers.fact"
POLICY_FILE = "waiver_policy.yml"


@dataclass(frozen=True)
class Waiver:
    rule: str
    hosts: str
    justification: str
    expires: dt.date
    approver: str
    source: str
    ticket: str = ""

    def covers(self, rule_id: str, host: str) -> bool:
        return self.rule == rule_id and fnmatch.fnmatchcase(host, self.hosts)

    def expired(self, today: dt.date) -> bool:
        """A waiver is valid through its expiry date and expired the day after."""
        return today > self.expires

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "hosts": self.hosts,
            "justification": self.justification,
            "expires": self.expires.isoformat(),
            "approver": self.approver,
            "ticket": self.ticket,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Waiver:
        return cls(
            rule=data["rule"],
            hosts=data["hosts"],
            justification=" ".join(str(data["justification"]).split()),
            expires=dt.date.fromisoformat(str(data["expires"])),
            approver=data["approver"],
            source=source if source is not None else data.get("source", ""),
            ticket=data.get("ticket", ""),
        )


@dataclass(frozen=True)
class WaiverDecision:
    """Which waiver applies to one result, and which matching ones had expired."""

    active: Waiver | None
    expired: tuple[Waiver, ...]


def _rule_problems(
    entries: Sequence[dict[str, Any]], catalog: Catalog | None, shown: str
) -> list[Problem]:
    if catalog is None:
        return []
    return [
        Problem(shown, f"waivers[{i}].rule", f"no rule {w['rule']} in the catalog")
        for i, w in enumerate(entries)
        if w["rule"] not in catalog.rules
    ]


def max_days(catalog: Catalog) -> tuple[dict[str, int], list[Problem]]:
    """The longest a waiver may run, in days from the audit day, by rule severity, as the
    catalog's waiver_policy.yml sets it (a missing or invalid policy is a problem)."""
    path = catalog.root / POLICY_FILE
    problems: list[Problem] = []
    if not path.is_file():
        return {}, [Problem(POLICY_FILE, "", "missing: the catalog must bound waiver expiry")]
    data = read_yaml(path, POLICY_FILE, problems)
    if problems:
        return {}, problems
    days = data.get("max_days") if isinstance(data, dict) else None
    if (
        not isinstance(days, dict)
        or set(days) != set(SEVERITIES)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in days.values())
    ):
        return {}, [
            Problem(
                POLICY_FILE,
                "max_days",
                f"must map every severity ({', '.join(SEVERITIES)}) to a positive number of days",
            )
        ]
    return {str(k): int(v) for k, v in days.items()}, []


def _bound_problems(
    waivers: Sequence[Waiver], catalog: Catalog, shown: str, today: dt.date
) -> list[Problem]:
    limits, problems = max_days(catalog)
    if problems:
        return problems
    out = []
    for i, w in enumerate(waivers):
        if w.rule not in catalog.rules:
            continue
        severity = catalog.rules[w.rule].severity
        latest = today + dt.timedelta(days=limits[severity])
        if w.expires > latest:
            out.append(
                Problem(
                    shown,
                    f"waivers[{i}].expires",
                    f"{w.expires.isoformat()} is more than {limits[severity]} days away, the "
                    f"catalog's maximum for a {severity} rule ({POLICY_FILE}); approve it again "
                    f"for a shorter term (at the latest {latest.isoformat()})",
                )
            )
    return out


def read_waivers(
    path: Path, catalog: Catalog | None = None, today: dt.date | None = None
) -> tuple[list[Waiver], list[Problem]]:
    """Waivers of a file and the problems found in it (schema, unknown rules, and with a
    catalog an expiry beyond the catalog's maximum counted from today)."""
    inside = catalog is not None and path.resolve().is_relative_to(catalog.root)
    shown = display_path(path, catalog.root) if catalog is not None and inside else str(path)
    problems: list[Problem] = []
    data = read_yaml(path, shown, problems)
    if problems:
        return [], problems
    if data is None:
        data = {"waivers": []}
    problems = schema_problems("waivers", data, shown, _schema_root(catalog, path))
    if problems:
        return [], problems
    problems = _rule_problems(data["waivers"], catalog, shown)
    waivers = [Waiver.from_dict(w, source=shown) for w in data["waivers"]]
    if catalog is not None:
        problems += _bound_problems(waivers, catalog, shown, today or dt.date.today())
    return waivers, problems


def _schema_root(catalog: Catalog | None, path: Path) -> Path:
    if catalog is not None:
        return catalog.root
    from m7guard.catalog.loader import find_policies_dir

    return find_policies_dir()


def load_waivers(
    path: Path, catalog: Catalog | None = None, today: dt.date | None = None
) -> list[Waiver]:
    """Waivers of a file; CatalogError naming file and field if any entry is invalid."""
    if not path.is_file():
        raise CatalogError(Problem(str(path), "", "waivers file not found"))
    waivers, problems = read_waivers(path, catalog, today)
    if problems:
        raise CatalogError(problems)
    return waivers


def host_waiver_claims(host: str, raw: str, catalog: Catalog) -> tuple[list[Waiver], list[str]]:
    """Waivers a role recorded on a host (HOST_FACT_PATH), as claims: evidence the audit
    reports with the result, never a waiver it applies. Invalid entries become warnings."""
    source = f"{host}:{HOST_FACT_PATH}"
    if not raw.strip():
        return [], []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [], [f"{source}: not valid JSON ({exc.msg}); its waivers are ignored"]
    if not isinstance(data, dict) or not isinstance(data.get("waivers"), list):
        return [], [f'{source}: expected {{"waivers": [...]}}; its waivers are ignored']
    entries = []
    warnings = []
    for i, entry in enumerate(data["waivers"]):
        if isinstance(entry, dict):
            entry = {"hosts": host, **entry}
        problems = schema_problems("waivers", {"waivers": [entry]}, source, catalog.root)
        problems += _rule_problems([entry], catalog, source) if not problems else []
        if not problems and not fnmatch.fnmatchcase(host, entry["hosts"]):
            problems = [Problem(source, "hosts", "a host fact may only waive its own host")]
        if problems:
            detail = "; ".join(
                f"{p.field.replace('waivers[0]', f'waivers[{i}]')}: {p.message}" for p in problems
            )
            warnings.append(f"{source}: waiver {i} ignored: {detail}")
            continue
        entries.append(Waiver.from_dict({**entry, "hosts": host}, source=source))
    return entries, warnings


def decide(waivers: Iterable[Waiver], rule_id: str, host: str, today: dt.date) -> WaiverDecision:
    """The first unexpired waiver covering (rule, host), and the expired ones that match."""
    active = None
    expired = []
    for waiver in waivers:
        if not waiver.covers(rule_id, host):
            continue
        if waiver.expired(today):
            expired.append(waiver)
        elif active is None:
            active = waiver
    return WaiverDecision(active, tuple(expired))
