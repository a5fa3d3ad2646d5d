"""Waivers: accepted exceptions to a rule on some hosts, with a reason, an expiry and an approver.

Waivers come from more than one source, all with the same fields:
- a waivers file (`m7guard audit --waivers FILE`, see policies/waivers.example.yml);
- a host fact: a role that knowingly leaves a rule unmet (for example an automation account
  exempt from MFA) writes /etc/ansible/facts.d/m7guard_waivers.fact on the host, a JSON
  document `{"waivers": [{rule, justification, expires, approver}]}` (`hosts` defaults to the
  host itself and may not name other hosts).

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
from m7guard.catalog.model import Catalog

HOST_FACT_PATH = "/etc/ansible/facts.d/m7guard_waivers.fact"


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


def read_waivers(path: Path, catalog: Catalog | None = None) -> tuple[list[Waiver], list[Problem]]:
    """Waivers of a file and the problems found in it (schema, unknown rules)."""
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
    return [Waiver.from_dict(w, source=shown) for w in data["waivers"]], problems


def _schema_root(catalog: Catalog | None, path: Path) -> Path:
    if catalog is not None:
        return catalog.root
    from m7guard.catalog.loader import find_policies_dir

    return find_policies_dir()


def load_waivers(path: Path, catalog: Catalog | None = None) -> list[Waiver]:
    """Waivers of a file; CatalogError naming file and field if any entry is invalid."""
    if not path.is_file():
        raise CatalogError(Problem(str(path), "", "waivers file not found"))
    waivers, problems = read_waivers(path, catalog)
    if problems:
        raise CatalogError(problems)
    return waivers


def host_fact_waivers(host: str, raw: str, catalog: Catalog) -> tuple[list[Waiver], list[str]]:
    """Waivers a role recorded on a host (HOST_FACT_PATH); invalid entries become warnings."""
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
