"""The results file: one versioned JSON document from which every report is rendered; and the
events the checks write while they run, from which the audit builds it.

Result states follow OpenSCAP: pass, fail, error, notapplicable, waived, notchecked. A waived
result keeps what the check found in `evaluated_state`. notchecked ("not assessed") is a rule
that was deliberately not evaluated, e.g. preflight's AWS checks without --aws: it is counted
and shown, never read as a pass.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import jsonschema

from m7guard.catalog.model import SEVERITIES, Catalog, Profile, Rule, severity_rank
from m7guard.errors import M7guardError

SCHEMA_VERSION = "1.0"
STATES: tuple[str, ...] = ("pass", "fail", "error", "notapplicable", "waived", "notchecked")
# How a state is shown to a person where the bare name would not say it.
STATE_LABELS: dict[str, str] = {"notchecked": "not assessed"}
FAILING_STATES = frozenset({"fail", "error"})
FAIL_ON_CHOICES: tuple[str, ...] = (*SEVERITIES, "none")


class ResultsError(M7guardError):
    """A results file cannot be read or does not match the results schema."""


DOCS_URL_SCHEMES: tuple[str, ...] = ("https", "http", "file")


def docs_address(value: str) -> str:
    """The address docs/ is published at, as reports link to it (the tool's information URI,
    each rule's help link under it): an absolute http(s) or file URL with no query or
    fragment, returned ending with "/". m7guard has no address of its own to default to."""
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in DOCS_URL_SCHEMES:
        raise M7guardError(
            f"{value!r} is not an absolute URL (https, http or file) "
            "(the address of m7guard's docs/ folder, e.g. https://docs.example.com/m7guard/)"
        )
    if parsed.scheme != "file" and not parsed.hostname:
        raise M7guardError(f"{value!r} names no host")
    if parsed.scheme == "file" and not parsed.path.startswith("/"):
        raise M7guardError(f"{value!r}: a file URL needs an absolute path")
    if parsed.query or parsed.fragment:
        raise M7guardError(f"{value!r}: no query or fragment (rule links are added to it)")
    url = urllib.parse.urlunsplit(parsed)
    return url if url.endswith("/") else url + "/"


_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "m7guard audit results",
    "type": "object",
    "required": [
        "schema_version",
        "tool",
        "started",
        "finished",
        "inventory",
        "profile",
        "hosts",
        "rules",
        "frameworks",
        "results",
        "waivers",
        "warnings",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {
                "name": _STR,
                "version": _STR,
                # where the operator publishes m7guard's docs/ (docs_address); absent when
                # not given: reports then carry no tool or rule help link
                "docs_url": {"type": "string", "pattern": r"^(https?|file)://[^?#]*/$"},
            },
        },
        "started": {"type": "string", "format": "date-time"},
        "finished": {"type": "string", "format": "date-time"},
        "inventory": _STR,
        "limit": {"type": ["string", "null"]},
        "profile": {
            "type": "object",
            "required": ["id", "title", "frameworks"],
            "properties": {"id": _STR, "title": _STR, "frameworks": _STRS},
        },
        "hosts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reachable"],
                "properties": {
                    "name": _STR,
                    "reachable": {"type": "boolean"},
                    "error": {"type": ["string", "null"]},
                    "groups": {"type": ["array", "null"], "items": _STR},
                    "facts": {"type": "object"},
                },
            },
        },
        "rules": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "severity", "references", "remediation", "check", "file"],
                "properties": {"severity": {"enum": list(SEVERITIES)}},
            },
        },
        "frameworks": {"type": "object"},
        # the catalog the audit read: the m7guard version that ships it and its digest
        # (m7guard.catalog.loader.catalog_digest); absent from results of older versions
        "catalog": {
            "type": "object",
            "required": ["version", "digest"],
            "properties": {"version": _STR, "digest": {"type": "string", "pattern": "^sha256:"}},
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["host", "rule", "state", "message", "evidence", "duration"],
                "properties": {
                    "host": _STR,
                    "rule": _STR,
                    "state": {"enum": list(STATES)},
                    "evaluated_state": {"enum": list(STATES)},
                    "message": _STR,
                    "evidence": {"type": "object"},
                    "duration": {"type": "number", "minimum": 0},
                    "waiver": {"type": ["object", "null"]},
                    # a cluster rule's result (host cluster:NAME): the node that evaluated it
                    "evaluated_on": _STR,
                },
            },
        },
        "waivers": {"type": "array", "items": {"type": "object"}},
        "warnings": _STRS,
        # only in the results of an audit given --attestations (m7guard.catalog.attestations)
        "attestations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "requirement",
                    "framework",
                    "control",
                    "statement",
                    "who",
                    "role",
                    "when",
                    "expiry",
                    "evidence",
                    "status",
                ],
                "properties": {"status": {"enum": ["attested", "expired"]}},
            },
        },
    },
}
# An expired attestation gates the audit like a failing rule of this severity: with --fail-on
# low or medium it exits 2, with high, critical or none it is reported only.
EXPIRED_ATTESTATION_SEVERITY = "medium"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rule_snapshot(catalog: Catalog, rule: Rule, profile: Profile | None) -> dict[str, Any]:
    """What the reports need to know about a rule, frozen into the results."""
    from m7guard.catalog.loader import display_path

    return {
        **rule.described(),
        "file": display_path(rule.path, catalog.root),
        "parameters": catalog.parameters_for(rule, profile),
    }


def framework_snapshot(catalog: Catalog, framework_id: str) -> dict[str, Any]:
    fw = catalog.frameworks[framework_id]
    return {
        "title": fw.title,
        "version": fw.version,
        "requirements": [
            {"id": r.id, "title": r.title, "evidence": r.evidence} for r in fw.requirements
        ],
    }


# -- events -----------------------------------------------------------------------------
# The checks' pytest process (m7guard.checks.support.plugin) appends one JSON line per event
# to the file `m7guard audit` gives it (--m7guard-events); the audit (m7guard.audit.runner)
# follows the file for its progress bar and builds the results file from it. These classes
# are the one definition of an event's shape on both sides.


@dataclass(frozen=True)
class CollectedEvent:
    """The rules collected per host, before any is evaluated."""

    type: ClassVar[str] = "collected"
    hosts: dict[str, list[str]]


@dataclass(frozen=True)
class HostEvent:
    """A host was read (its snapshot), or `error` says why it could not be."""

    type: ClassVar[str] = "host"
    host: str
    error: str | None
    groups: list[str] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    # the waivers file the host keeps about itself, as read: a claim, never a waiver
    waivers_raw: str = ""


@dataclass(frozen=True)
class ResultEvent:
    """One rule evaluated on one host."""

    type: ClassVar[str] = "result"
    host: str
    rule: str
    state: str
    message: str
    evidence: dict[str, Any]
    duration: float
    nodeid: str = ""
    at: float = 0.0


Event = CollectedEvent | HostEvent | ResultEvent
_EVENTS: dict[str, type[CollectedEvent] | type[HostEvent] | type[ResultEvent]] = {
    cls.type: cls for cls in (CollectedEvent, HostEvent, ResultEvent)
}


def event_line(event: Event) -> bytes:
    """The event as one JSON line (keys sorted; what JSON cannot hold is written as text)."""
    data = {"type": event.type, **asdict(event)}
    return json.dumps(data, sort_keys=True, default=str).encode() + b"\n"


def read_event(line: str) -> Event:
    """The event of one line; ResultsError names what is wrong with a line that is not one."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"event line is not JSON: {exc.msg}") from exc
    kind = data.get("type") if isinstance(data, dict) else None
    cls = _EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ResultsError(f"event line: unknown type {kind!r} (one of {', '.join(_EVENTS)})")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names - {"type"})
    if unknown:
        raise ResultsError(f"{kind} event: unknown fields {', '.join(unknown)}")
    try:
        return cls(**{k: v for k, v in data.items() if k != "type"})
    except TypeError as exc:
        raise ResultsError(f"{kind} event: {exc}") from exc


@dataclass(frozen=True)
class RequirementStatus:
    """How a framework requirement fared in an audit.

    status: satisfied (every result of its rules passed or was notapplicable, at least one
    passed), not-satisfied (a rule failed or errored), waived (nothing failed but a result was
    waived: an accepted exception is not a satisfied requirement), not-assessed (its rules
    produced no evaluated result, or one of them was not checked), manual (no rule automates
    it: evidence needed), attested (manual, and an unexpired attestation covers it; only in
    the results of an audit given attestations). attestations: those naming it, with their
    status (an expired one leaves it manual).
    """

    framework: str
    id: str
    title: str
    evidence: str
    rules: tuple[str, ...]
    status: str
    failing: tuple[str, ...]
    attestations: tuple[dict[str, Any], ...] = ()


class Results:
    """A results document with the views every report needs."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def load(cls, path: Path) -> Results:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ResultsError(f"cannot read {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        return cls.validated(data, str(path))

    @classmethod
    def validated(cls, data: dict[str, Any], where: str = "results") -> Results:
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise ResultsError(
                f"{where}: schema_version {version!r} is not {SCHEMA_VERSION!r}; "
                "re-run the audit with this version of m7guard"
            )
        validator = jsonschema.Draft202012Validator(RESULTS_SCHEMA)
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            field = "/".join(map(str, error.absolute_path)) or "(document)"
            raise ResultsError(f"{where}: {field}: {error.message}")
        return cls(data)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.data, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.data["results"])

    @property
    def rules(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["rules"])

    @property
    def hosts(self) -> list[str]:
        return [h["name"] for h in self.data["hosts"]]

    def severity(self, rule_id: str) -> str:
        return str(self.data["rules"].get(rule_id, {}).get("severity", "medium"))

    def counts(self, results: Iterable[dict[str, Any]] | None = None) -> dict[str, int]:
        counter = Counter(r["state"] for r in (self.results if results is None else results))
        return {state: counter.get(state, 0) for state in STATES}

    def by_host(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {h: [] for h in self.hosts}
        for r in self.results:
            out.setdefault(r["host"], []).append(r)
        return out

    def failing(self, threshold: str = "low") -> list[dict[str, Any]]:
        """fail and error results whose rule severity is at or above threshold."""
        if threshold == "none":
            return []
        rank = severity_rank(threshold)
        return [
            r
            for r in self.results
            if r["state"] in FAILING_STATES and severity_rank(self.severity(r["rule"])) >= rank
        ]

    def errors(self) -> list[dict[str, Any]]:
        """error results of every severity: a rule that could not be evaluated."""
        return [r for r in self.results if r["state"] == "error"]

    def vacuous(self) -> bool:
        """True when no result passed: every result is notapplicable, waived or notchecked
        (or there is none), so the audit proved nothing about the hosts."""
        return not any(r["state"] in ("pass", "fail") for r in self.results)

    def gating(self, fail_on: str) -> list[dict[str, Any]]:
        """The results that make the audit fail with this --fail-on: fail results at or above
        the threshold and error results of any severity (none: nothing)."""
        if fail_on == "none":
            return []
        failing = self.failing(fail_on)
        seen = {id(r) for r in failing}
        return failing + [r for r in self.errors() if id(r) not in seen]

    def attestations(self) -> list[dict[str, Any]]:
        """The attestations the audit was given, with their status (none without)."""
        return list(self.data.get("attestations", []))

    def expired_attestations(self, fail_on: str = "low") -> list[dict[str, Any]]:
        """Expired attestations, if they gate at this --fail-on (see
        EXPIRED_ATTESTATION_SEVERITY); all of them with the default "low"."""
        if fail_on == "none" or severity_rank(fail_on) > severity_rank(
            EXPIRED_ATTESTATION_SEVERITY
        ):
            return []
        return [a for a in self.attestations() if a["status"] == "expired"]

    def exit_code(self, fail_on: str) -> int:
        """2 when a result gates (see gating), an expired attestation gates (see
        expired_attestations) or the audit is vacuous, 0 otherwise; with --fail-on none
        always 0."""
        if fail_on == "none":
            return 0
        gates = self.gating(fail_on) or self.expired_attestations(fail_on)
        return 2 if gates or self.vacuous() else 0

    def requirement_statuses(self, framework_id: str) -> list[RequirementStatus]:
        fw = self.data["frameworks"][framework_id]
        by_req: dict[str, list[str]] = {}
        for rule_id, rule in sorted(self.data["rules"].items()):
            for ref in rule["references"].get(framework_id, []):
                by_req.setdefault(ref, []).append(rule_id)
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for r in self.results:
            by_rule.setdefault(r["rule"], []).append(r)
        attested: dict[str, list[dict[str, Any]]] = {}
        for a in self.attestations():
            if a["framework"] == framework_id:
                attested.setdefault(a["control"], []).append(a)
        out = []
        for req in fw["requirements"]:
            rules = tuple(by_req.get(req["id"], []))
            results = [r for rule_id in rules for r in by_rule.get(rule_id, [])]
            failing = tuple(sorted({r["rule"] for r in results if r["state"] in FAILING_STATES}))
            attestations = tuple(attested.get(req["id"], []) if not rules else [])
            if not rules and any(a["status"] == "attested" for a in attestations):
                status = "attested"
            elif not rules:
                status = "manual"
            elif failing:
                status = "not-satisfied"
            elif any(r["state"] == "waived" for r in results):
                status = "waived"
            elif any(r["state"] == "notchecked" for r in results):
                status = "not-assessed"
            elif any(r["state"] == "pass" for r in results):
                status = "satisfied"
            else:
                status = "not-assessed"
            out.append(
                RequirementStatus(
                    framework_id,
                    req["id"],
                    req["title"],
                    req.get("evidence", ""),
                    rules,
                    status,
                    failing,
                    attestations,
                )
            )
        return out

    def framework_summary(self, framework_id: str) -> dict[str, Any]:
        statuses = self.requirement_statuses(framework_id)
        count = Counter(s.status for s in statuses)
        # a waived requirement is assessed and not satisfied: the share never counts it
        assessed = count["satisfied"] + count["not-satisfied"] + count["waived"]
        return {
            "framework": framework_id,
            "title": self.data["frameworks"][framework_id]["title"],
            "requirements": len(statuses),
            "satisfied": count["satisfied"],
            "not_satisfied": count["not-satisfied"],
            "waived": count["waived"],
            "not_assessed": count["not-assessed"],
            "manual": count["manual"],
            "assessed": assessed,
            "share_satisfied": (count["satisfied"] / assessed) if assessed else 0.0,
        } | ({"attested": count["attested"]} if "attestations" in self.data else {})
