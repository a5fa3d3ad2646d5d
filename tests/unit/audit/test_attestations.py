"""Attestations of manual requirements: strict file validation, expiry at audit time, the
results file, the reports and the exit code."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from m7guard.audit.runner import AuditOptions, _Events, assemble
from m7guard.catalog import CatalogError, load_catalog
from m7guard.catalog.attestations import load_attestations, read_attestations
from m7guard.reports import html, junit, oscal, prom, sarif
from m7guard.results import HostEvent, ResultEvent, Results

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
EXAMPLE = REPO / "docs" / "examples" / "attestations.yml"
TODAY = dt.date(2026, 3, 1)
# manual in the catalog: no rule references them
MANUAL = ("pci_dss_4: 3.7.1", "soc2: CC7.4")
ENTRY = {
    "requirement": "pci_dss_4: 3.7.1",
    "statement": "Key-management procedures for the field encryption keys are documented.",
    "who": "Example Security Officer",
    "role": "Security officer",
    "when": "2026-01-15",
    "expiry": "2027-01-14",
    "evidence": "https://wiki.example.com/security/key-management",
}


def _file(tmp_path: Path, *entries: dict[str, Any], raw: str | None = None) -> Path:
    path = tmp_path / "attestations.yml"
    path.write_text(
        raw if raw is not None else "---\n" + yaml.safe_dump({"attestations": list(entries)})
    )
    return path


def _problems(tmp_path: Path, *entries: dict[str, Any]) -> list[str]:
    _, problems = read_attestations(_file(tmp_path, *entries), load_catalog(POLICIES), TODAY)
    return [str(p) for p in problems]


def test_the_example_file_is_valid_and_names_manual_requirements() -> None:
    catalog = load_catalog(POLICIES)
    attestations = load_attestations(EXAMPLE, catalog, dt.date.today())
    assert attestations
    for a in attestations:
        cov = {c.requirement.id: c for c in catalog.coverage(a.framework, catalog.rules.values())}
        assert not cov[a.control].automated


def test_a_valid_entry_loads(tmp_path: Path) -> None:
    (a,) = load_attestations(_file(tmp_path, ENTRY), load_catalog(POLICIES), TODAY)
    assert (a.framework, a.control, a.who) == ("pci_dss_4", "3.7.1", "Example Security Officer")
    assert a.requirement == "pci_dss_4: 3.7.1"
    assert a.when == dt.date(2026, 1, 15) and a.expiry == dt.date(2027, 1, 14)


def test_unquoted_yaml_dates_and_the_compact_requirement_form(tmp_path: Path) -> None:
    raw = (
        "attestations:\n"
        "  - requirement: soc2:CC7.4\n"
        "    statement: The incident response plan was exercised this quarter.\n"
        "    who: Example Incident Lead\n    role: Incident manager\n"
        "    when: 2026-02-01\n    expiry: 2026-08-01\n"
        "    evidence: evidence/ir-exercise-2026q1.pdf\n"
    )
    (a,) = load_attestations(_file(tmp_path, raw=raw), load_catalog(POLICIES), TODAY)
    assert (a.framework, a.control, a.expiry) == ("soc2", "CC7.4", dt.date(2026, 8, 1))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"signed": "yes"}, "attestations[0]", "Additional properties"),
        ({"who": None}, "attestations[0].who", ""),
        ({"when": "2026-02-30"}, "attestations[0].when", "is not a 'date'"),
        ({"when": "15/01/2026"}, "attestations[0].when", "does not match"),
        ({"expiry": "2026-01-15"}, "attestations[0].expiry", "is not after when"),
        ({"expiry": "2027-01-16"}, "attestations[0].expiry", "more than 365 days after when"),
        ({"when": "2026-03-02"}, "attestations[0].when", "after today"),
        ({"requirement": "pci_dss: 12.10.1"}, "attestations[0].requirement", "no framework"),
        ({"requirement": "pci_dss_4: 12.10.1"}, "attestations[0].requirement", "no requirement"),
        ({"requirement": "3.7.1"}, "attestations[0].requirement", "does not match"),
        (
            {"requirement": "pci_dss_4: 1.2.1"},
            "attestations[0].requirement",
            "automated by NET-001",
        ),
        ({"statement": "ok"}, "attestations[0].statement", "too short"),
    ],
)
def test_invalid_entries_name_file_and_field(
    tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    entry = {k: v for k, v in (ENTRY | change).items() if v is not None}
    problems = _problems(tmp_path, entry)
    assert problems, change
    assert any(f"attestations.yml: {field}" in p and message in p for p in problems), problems


def test_missing_file_and_missing_policy(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="attestations file not found"):
        load_attestations(tmp_path / "none.yml", load_catalog(POLICIES), TODAY)
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "waiver_policy.yml").write_text(
        "---\nmax_days: {low: 365, medium: 180, high: 90, critical: 30}\n"
    )
    with pytest.raises(CatalogError, match=r"waiver_policy\.yml: attestation_max_days"):
        load_attestations(_file(tmp_path, ENTRY), load_catalog(policies), TODAY)


# --- the audit ------------------------------------------------------------------------


def _events() -> _Events:
    return _Events(
        collected={"node1": ["KERN-005"]},
        hosts={"node1": HostEvent(host="node1", error=None, groups=["all"])},
        results=[
            ResultEvent(
                host="node1",
                rule="KERN-005",
                state="pass",
                message="",
                evidence={"running": "1"},
                duration=0.01,
            )
        ],
    )


def _assemble(attestations_file: Path | None, today: dt.date = TODAY) -> Results:
    catalog = load_catalog(POLICIES)
    opts = AuditOptions(inventory=Path("hosts.yml"), profile="kernel", today=today)
    attestations = (
        load_attestations(attestations_file, catalog, today) if attestations_file else None
    )
    return assemble(
        opts,
        catalog,
        catalog.profile("kernel"),
        [],
        _events(),
        started=f"{today}T00:00:00Z",
        finished=f"{today}T00:00:01Z",
        attestations=attestations,
    )


def _two(tmp_path: Path) -> Path:
    """One attestation valid on TODAY + 30 days (pci_dss_4 3.7.1), one expired then
    (soc2 CC7.4)."""
    expiring = ENTRY | {
        "requirement": "soc2: CC7.4",
        "statement": "The incident response plan was exercised.",
        "when": "2026-01-01",
        "expiry": "2026-03-15",
        "evidence": "evidence/ir-exercise.pdf",
    }
    return _file(tmp_path, ENTRY, expiring)


def _status(results: Results, framework: str, requirement: str) -> str:
    return next(s.status for s in results.requirement_statuses(framework) if s.id == requirement)


def test_results_record_each_attestation_with_its_status(tmp_path: Path) -> None:
    later = TODAY + dt.timedelta(days=30)
    results = _assemble(_two(tmp_path), today=later)
    recorded = {a["requirement"]: a["status"] for a in results.data["attestations"]}
    assert recorded == {"pci_dss_4: 3.7.1": "attested", "soc2: CC7.4": "expired"}
    assert _status(results, "pci_dss_4", "3.7.1") == "attested"
    # expired: does not count as attested, stays manual, and says so
    assert _status(results, "soc2", "CC7.4") == "manual"
    assert any(
        "soc2: CC7.4" in w and "expired on 2026-03-15" in w for w in results.data["warnings"]
    )
    assert results.framework_summary("pci_dss_4")["attested"] == 1
    assert results.framework_summary("soc2")["attested"] == 0
    # the document survives a round trip through the results file
    path = tmp_path / "results.json"
    results.write(path)
    assert Results.load(path).data["attestations"] == results.data["attestations"]


def test_an_attestation_is_valid_through_its_expiry_day(tmp_path: Path) -> None:
    on_the_day = _assemble(_two(tmp_path), today=dt.date(2026, 3, 15))
    assert {a["status"] for a in on_the_day.data["attestations"]} == {"attested"}
    day_after = _assemble(_two(tmp_path), today=dt.date(2026, 3, 16))
    assert [a["status"] for a in day_after.data["attestations"]] == ["attested", "expired"]


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [("low", 2), ("medium", 2), ("high", 0), ("critical", 0), ("none", 0)],
)
def test_an_expired_attestation_fails_at_fail_on_medium_or_lower(
    tmp_path: Path, fail_on: str, code: int
) -> None:
    expired = _assemble(_two(tmp_path), today=dt.date(2026, 3, 16))
    assert expired.exit_code(fail_on) == code
    valid = _assemble(_two(tmp_path), today=dt.date(2026, 3, 15))
    assert valid.exit_code(fail_on) == 0


def test_without_attestations_nothing_changes(tmp_path: Path) -> None:
    results = _assemble(None)
    assert "attestations" not in results.data
    assert "attested" not in results.framework_summary("soc2")
    empty = _assemble(_file(tmp_path, raw="attestations: []\n"))
    assert empty.data["attestations"] == []


def test_reports_show_attestations_beside_the_results(tmp_path: Path) -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    results = _assemble(_two(tmp_path), today=dt.date(2026, 3, 16))
    page = html.render(results)
    assert 'id="attestations"' in page
    assert "Example Security Officer" in page and "EXPIRED: not attested" in page
    assert '<a href="https://wiki.example.com/security/key-management">' in page
    assert "attested: Example Security Officer (Security officer), valid through 2027-01-14" in page
    text = prom.render(results)
    assert (
        'm7guard_framework_requirements{framework="pci_dss_4",status="attested",'
        'profile="kernel"} 1' in text
    )
    path = tmp_path / "assessment-results.json"
    path.write_text(oscal.render(results))
    model = AssessmentResults.oscal_read(path)
    by_fw = {r.title.split(": ", 1)[1]: r for r in model.results}
    pci = next(r for t, r in by_fw.items() if t.startswith("PCI"))
    finding = next(f for f in pci.findings if f.target.target_id == "pci_dss_4-3.7.1")
    assert finding.target.status.state.value == "satisfied"
    (obs_ref,) = finding.related_observations
    obs = next(o for o in pci.observations if o.uuid == obs_ref.observation_uuid)
    assert [m.root if hasattr(m, "root") else m for m in obs.methods] == ["EXAMINE"]
    assert str(obs.relevant_evidence[0].href) == ENTRY["evidence"]
    soc2 = next(r for t, r in by_fw.items() if t.startswith("SOC"))
    finding = next(f for f in soc2.findings if f.target.target_id == "soc2-CC7.4")
    assert finding.target.status.state.value == "not-satisfied"
    assert "Expired attestation" in finding.remarks
    # JUnit and SARIF render the automated results as before
    assert json.loads(sarif.render(results))["runs"]
    assert "<testsuites" in junit.render(results)


def test_html_escapes_attestation_text_and_links_only_http(tmp_path: Path) -> None:
    entry = ENTRY | {
        "statement": "Procedures <script>alert(1)</script> are documented.",
        "evidence": "javascript:alert(1)",
    }
    page = html.render(_assemble(_file(tmp_path, entry)))
    assert "<script>alert(1)</script>" not in page
    assert 'href="javascript:' not in page


def test_report_renders_attestations_judged_on_the_audit_day(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from m7guard.cli import cli

    results_file = tmp_path / "out" / "results.json"
    _assemble(None, today=dt.date(2026, 3, 16)).write(results_file)
    before = results_file.read_bytes()
    attestations = _two(tmp_path)
    done = CliRunner().invoke(
        cli,
        [
            "report",
            str(results_file),
            "--format",
            "html,oscal,prom",
            "--attestations",
            str(attestations),
            "--policies",
            str(POLICIES),
        ],
    )
    assert done.exit_code == 0, done.output
    page = (results_file.parent / "report.html").read_text()
    # judged on the audit's day (2026-03-16), not today: CC7.4 expired on 2026-03-15
    assert "EXPIRED: not attested" in page and "Example Security Officer" in page
    assert 'status="attested"' in (results_file.parent / "m7guard.prom").read_text()
    assert results_file.read_bytes() == before
    bad = _file(tmp_path, ENTRY | {"requirement": "pci_dss_4: 1.2.1"})
    done = CliRunner().invoke(
        cli, ["report", str(results_file), "--attestations", str(bad), "--policies", str(POLICIES)]
    )
    assert done.exit_code == 1
    assert "attestations[0].requirement" in done.output and "automated by" in done.output
