"""The catalog's data: rules, frameworks with their requirements, profiles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
FRAMEWORK_IDS: tuple[str, ...] = ("soc2", "hipaa", "pci_dss_4", "nist_800_53", "cis_debian_12")


# A concern has one name: its role's (docs/catalog.md, "Names"). Areas that had another name
# before 0.1.0 are still read under it where users write one (a profile's select.areas, a
# framework's expected_for_areas, `catalog list --area`).
AREA_ALIASES: dict[str, str] = {
    "audit": "audit_logging",
    "encryption": "field_encryption",
    "identity": "kerberos_mfa",
    "network": "zero_trust_network",
    "os": "os_baseline",
}


def area_name(name: str) -> str:
    """The area NAME stands for: itself, or the name an old one was given."""
    return AREA_ALIASES.get(name, name)


# the generated rule table (m7guard docs), relative to docs/, and its anchor for one rule: the
# rule help link of a report is <documentation address><RULES_PAGE>#<rule_anchor(id)>
RULES_PAGE = "reference/rules.md"


def rule_anchor(rule_id: str) -> str:
    return rule_id.lower()


def rule_help_url(docs_url: str, rule_id: str) -> str:
    """The help link of a rule under the address docs/ is published at (ends with /)."""
    return f"{docs_url}{RULES_PAGE}#{rule_anchor(rule_id)}"


def severity_rank(severity: str) -> int:
    """Order of a severity: low=0 ... critical=3."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    rationale: str
    severity: str
    references: Mapping[str, tuple[str, ...]]
    remediation_role: str | None  # None for a preflight rule: no role fixes it
    remediation_tags: tuple[str, ...]
    check: str
    area: str
    path: Path
    groups: tuple[str, ...] = ("all",)
    conditions: tuple[str, ...] = ()
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    remediation_notes: str = ""
    # framework id -> why the rule has no requirement of it
    unmapped: Mapping[str, str] = field(default_factory=dict)
    # node: evaluated on every host; cluster: once per Data Fabric cluster, on one CLDB node
    # (m7guard.checks.support.cluster)
    scope: str = "node"

    @property
    def remediation_command(self) -> str:
        """The command that applies the fix; for a rule without a role (preflight), its
        notes say what to fix instead."""
        if self.remediation_role is None:
            return self.remediation_notes
        tags = ",".join(self.remediation_tags)
        return f"ansible-playbook playbooks/site.yml --tags {tags}"

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    def described(self) -> dict[str, Any]:
        """What the rule says, as JSON data: title, severity, area, description, rationale,
        references, remediation and check (the results file and `catalog show` add more)."""
        return {
            "title": self.title,
            "severity": self.severity,
            "area": self.area,
            "description": self.description,
            "rationale": self.rationale,
            "references": {k: list(v) for k, v in self.references.items()},
            **({"unmapped": dict(self.unmapped)} if self.unmapped else {}),
            **({"scope": self.scope} if self.scope != "node" else {}),
            "remediation": {
                "role": self.remediation_role,
                "tags": list(self.remediation_tags),
                "command": self.remediation_command,
                "notes": self.remediation_notes,
            },
            "check": self.check,
        }


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    evidence: str = ""


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    version: str
    source: str
    requirements: tuple[Requirement, ...]
    path: Path
    # rule areas whose every rule references this framework or says why not (Rule.unmapped)
    expected_for_areas: tuple[str, ...] = ()

    def requirement_ids(self) -> set[str]:
        return {r.id for r in self.requirements}


@dataclass(frozen=True)
class Selector:
    all: bool = False
    ids: tuple[str, ...] | None = None
    areas: tuple[str, ...] | None = None
    frameworks: tuple[str, ...] | None = None
    min_severity: str | None = None

    def matches(self, rule: Rule) -> bool:
        if self.ids is not None and rule.id not in self.ids:
            return False
        if self.areas is not None and rule.area not in self.areas:
            return False
        if self.frameworks is not None and not any(f in rule.references for f in self.frameworks):
            return False
        return self.min_severity is None or severity_rank(rule.severity) >= severity_rank(
            self.min_severity
        )


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    description: str
    frameworks: tuple[str, ...]
    select: tuple[Selector, ...]
    exclude: tuple[str, ...]
    parameters: Mapping[str, Mapping[str, Any]]
    path: Path

    def selects(self, rule: Rule) -> bool:
        return rule.id not in self.exclude and any(s.matches(rule) for s in self.select)


@dataclass(frozen=True)
class RequirementCoverage:
    """A requirement and the rules (of a rule set) that reference it.

    `automated` when at least one rule covers it; otherwise it is manual: a person must
    supply the evidence.
    """

    framework: str
    requirement: Requirement
    rules: tuple[str, ...]

    @property
    def automated(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class Catalog:
    root: Path
    rules: Mapping[str, Rule]
    frameworks: Mapping[str, Framework]
    profiles: Mapping[str, Profile]

    def rule(self, rule_id: str) -> Rule:
        from m7guard.catalog.errors import UnknownRuleError

        try:
            return self.rules[rule_id]
        except KeyError:
            known = ", ".join(sorted(self.rules)) or "none"
            raise UnknownRuleError(f"unknown rule {rule_id!r}; the catalog has: {known}") from None

    def profile(self, name: str) -> Profile:
        from m7guard.catalog.errors import UnknownProfileError

        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise UnknownProfileError(
                f"unknown profile {name!r}; policies/profiles/ has: {known}"
            ) from None

    def rules_for(self, profile: Profile | None) -> list[Rule]:
        rules = sorted(self.rules.values(), key=lambda r: r.id)
        return rules if profile is None else [r for r in rules if profile.selects(r)]

    def parameters_for(self, rule: Rule, profile: Profile | None) -> dict[str, Any]:
        values = rule.defaults()
        if profile is not None:
            values.update(profile.parameters.get(rule.id, {}))
        return values

    def coverage(self, framework_id: str, rules: Iterable[Rule]) -> list[RequirementCoverage]:
        framework = self.frameworks[framework_id]
        by_requirement: dict[str, list[str]] = {r.id: [] for r in framework.requirements}
        for rule in rules:
            for ref in rule.references.get(framework_id, ()):
                by_requirement.setdefault(ref, []).append(rule.id)
        return [
            RequirementCoverage(framework_id, req, tuple(sorted(by_requirement[req.id])))
            for req in framework.requirements
        ]
