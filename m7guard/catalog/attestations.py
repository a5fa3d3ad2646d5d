"""Attestations: a named person states that a requirement no rule automates is met.

A framework requirement that no rule of the catalog references is manual: no check can prove
it, so an auditor accepts a signed statement with its evidence instead. Attestations come
from a file the operator passes (`m7guard audit --attestations FILE`, see
docs/examples/attestations.yml); each names the requirement (`FRAMEWORK: ID`), the
statement, who makes it and in which role, the day it was made (`when`), the day it stops
counting (`expiry`) and where the evidence is (a link or a path).

The file is validated strictly: unknown or missing fields, a framework or requirement the
catalog does not have, a requirement a rule automates (a statement never stands in for a
check), `when` after the audit day, `expiry` not after `when` or further from it than the
catalog allows (policies/waiver_policy.yml, `attestation_max_days`).

Like a waiver, an attestation is valid through its expiry date and expired the day after: an
expired attestation is reported as `expired` and does not count as attested.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m7guard.catalog.errors import CatalogError, Problem
from m7guard.catalog.loader import display_path, read_yaml, schema_problems
from m7guard.catalog.model import Catalog

POLICY_FILE = "waiver_policy.yml"
POLICY_KEY = "attestation_max_days"
STATUSES: tuple[str, ...] = ("attested", "expired")
_REQUIREMENT = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*:\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Attestation:
    framework: str
    control: str
    statement: str
    who: str
    role: str
    when: dt.date
    expiry: dt.date
    evidence: str
    source: str

    @property
    def requirement(self) -> str:
        return f"{self.framework}: {self.control}"

    def expired(self, today: dt.date) -> bool:
        """Valid through its expiry date, expired the day after."""
        return today > self.expiry

    def status(self, today: dt.date) -> str:
        return "expired" if self.expired(today) else "attested"

    def to_dict(self, today: dt.date) -> dict[str, Any]:
        """The attestation as the results file records it, with its status on `today`."""
        return {
            "requirement": self.requirement,
            "framework": self.framework,
            "control": self.control,
            "statement": self.statement,
            "who": self.who,
            "role": self.role,
            "when": self.when.isoformat(),
            "expiry": self.expiry.isoformat(),
            "evidence": self.evidence,
            "source": self.source,
            "status": self.status(today),
        }


def split_requirement(text: str) -> tuple[str, str] | None:
    """`pci_dss_4: 2.2.1` -> ("pci_dss_4", "2.2.1"); None if it is not FRAMEWORK: ID."""
    match = _REQUIREMENT.match(text)
    return (match.group(1), match.group(2)) if match else None


def max_days(catalog: Catalog) -> tuple[int | None, list[Problem]]:
    """The longest an attestation may run (expiry - when), from the catalog's policy."""
    path = catalog.root / POLICY_FILE
    problems: list[Problem] = []
    if not path.is_file():
        return None, [Problem(POLICY_FILE, "", "missing: the catalog must bound attestations")]
    data = read_yaml(path, POLICY_FILE, problems)
    if problems:
        return None, problems
    days = data.get(POLICY_KEY) if isinstance(data, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
        return None, [Problem(POLICY_FILE, POLICY_KEY, "must be a positive number of days")]
    return days, []


def _automated(catalog: Catalog, framework: str, control: str) -> list[str]:
    return sorted(
        rule.id for rule in catalog.rules.values() if control in rule.references.get(framework, ())
    )


def _entry_problems(
    i: int, entry: dict[str, Any], catalog: Catalog, shown: str, today: dt.date, limit: int
) -> list[Problem]:
    field = f"attestations[{i}]"
    out: list[Problem] = []
    parts = split_requirement(entry["requirement"])
    if parts is None:
        return [Problem(shown, f"{field}.requirement", "must be FRAMEWORK: REQUIREMENT")]
    framework, control = parts
    if framework not in catalog.frameworks:
        known = ", ".join(sorted(catalog.frameworks))
        out.append(
            Problem(shown, f"{field}.requirement", f"no framework {framework}; known: {known}")
        )
    elif control not in catalog.frameworks[framework].requirement_ids():
        out.append(
            Problem(
                shown,
                f"{field}.requirement",
                f"{framework} has no requirement {control} "
                f"({display_path(catalog.frameworks[framework].path, catalog.root)})",
            )
        )
    else:
        rules = _automated(catalog, framework, control)
        if rules:
            out.append(
                Problem(
                    shown,
                    f"{field}.requirement",
                    f"{framework} {control} is automated by {', '.join(rules)}: the checks "
                    "prove it, an attestation cannot stand in for them",
                )
            )
    when = dt.date.fromisoformat(entry["when"])
    expiry = dt.date.fromisoformat(entry["expiry"])
    if when > today:
        out.append(Problem(shown, f"{field}.when", f"{when.isoformat()} is after today ({today})"))
    if expiry <= when:
        out.append(
            Problem(shown, f"{field}.expiry", f"{expiry.isoformat()} is not after when ({when})")
        )
    elif (expiry - when).days > limit:
        out.append(
            Problem(
                shown,
                f"{field}.expiry",
                f"{expiry.isoformat()} is more than {limit} days after when ({when}), the "
                f"catalog's maximum ({POLICY_FILE}, {POLICY_KEY}); attest again for a "
                f"shorter term (at the latest {(when + dt.timedelta(days=limit)).isoformat()})",
            )
        )
    return out


def _date_problems(entries: Sequence[dict[str, Any]], shown: str) -> list[Problem]:
    out = []
    for i, entry in enumerate(entries):
        for key in ("when", "expiry"):
            try:
                dt.date.fromisoformat(entry[key])
            except ValueError:
                out.append(
                    Problem(shown, f"attestations[{i}].{key}", f"{entry[key]!r} is not a date")
                )
    return out


def read_attestations(
    path: Path, catalog: Catalog, today: dt.date | None = None
) -> tuple[list[Attestation], list[Problem]]:
    """Attestations of a file and the problems found in it (see the module docstring)."""
    today = today or dt.date.today()
    inside = path.resolve().is_relative_to(catalog.root)
    shown = display_path(path, catalog.root) if inside else str(path)
    problems: list[Problem] = []
    data = read_yaml(path, shown, problems)
    if problems:
        return [], problems
    if data is None:
        data = {"attestations": []}
    problems = schema_problems("attestations", data, shown, catalog.root)
    if problems:
        return [], problems
    entries = data["attestations"]
    problems = _date_problems(entries, shown)
    if problems:
        return [], problems
    limit, problems = max_days(catalog)
    if problems or limit is None:
        return [], problems
    for i, entry in enumerate(entries):
        problems += _entry_problems(i, entry, catalog, shown, today, limit)
    if problems:
        return [], problems
    out = []
    for entry in entries:
        framework, control = split_requirement(entry["requirement"]) or ("", "")
        out.append(
            Attestation(
                framework=framework,
                control=control,
                statement=" ".join(entry["statement"].split()),
                who=entry["who"],
                role=entry["role"],
                when=dt.date.fromisoformat(entry["when"]),
                expiry=dt.date.fromisoformat(entry["expiry"]),
                evidence=entry["evidence"],
                source=shown,
            )
        )
    return out, []


def load_attestations(
    path: Path, catalog: Catalog, today: dt.date | None = None
) -> list[Attestation]:
    """Attestations of a file; CatalogError naming file and field if any entry is invalid."""
    if not path.is_file():
        raise CatalogError(Problem(str(path), "", "attestations file not found"))
    attestations, problems = read_attestations(path, catalog, today)
    if problems:
        raise CatalogError(problems)
    return attestations


def recorded(attestations: Sequence[Attestation], today: dt.date) -> list[dict[str, Any]]:
    """The attestations as the results file records them (`attestations`), each with its
    status on the audit day, in file order."""
    return [a.to_dict(today) for a in attestations]


def expiry_warnings(attestations: Sequence[Attestation], today: dt.date) -> list[str]:
    """A warning per attestation expired on `today`."""
    return expiry_warnings_of(recorded(attestations, today))


def attach(
    data: dict[str, Any], attestations: Sequence[Attestation], today: dt.date
) -> dict[str, Any]:
    """A results document with these attestations (status on `today`) in place of any it
    had, and their expiry warnings in place of the old ones."""
    old = set(expiry_warnings_of(data.get("attestations", [])))
    warnings = [w for w in data["warnings"] if w not in old]
    return data | {
        "attestations": recorded(attestations, today),
        "warnings": warnings + expiry_warnings(attestations, today),
    }


def expiry_warnings_of(entries: Sequence[dict[str, Any]]) -> list[str]:
    """The warnings an audit gave for these recorded attestations."""
    return [
        f"attestation of {a['requirement']} by {a['who']} ({a['source']}) expired on "
        f"{a['expiry']}: the requirement is not attested"
        for a in entries
        if a["status"] == "expired"
    ]
