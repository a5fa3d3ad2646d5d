"""`m7guard audit --attestations` end to end on this machine (ansible local connection,
read-only): recorded in results.json, an expired one printed and failing at --fail-on medium
or lower, an invalid file stopping the audit before any check; and --format poam."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from trestle.oscal.poam import PlanOfActionAndMilestones

from m7guard.results import Results

from .conftest import run_audit_cli

REPO = Path(__file__).resolve().parents[3]
POLICIES = str(REPO / "policies")


def _attestations(tmp_path: Path, **change: str) -> Path:
    today = dt.date.today()
    entries = [
        {
            "requirement": "pci_dss_4: 3.7.1",
            "statement": "Key-management procedures are documented and reviewed.",
            "who": "Example Security Officer",
            "role": "Security officer",
            "when": (today - dt.timedelta(days=10)).isoformat(),
            "expiry": (today + dt.timedelta(days=100)).isoformat(),
            "evidence": "https://wiki.example.com/km",
        },
        {
            "requirement": "soc2: CC7.4",
            "statement": "The incident response plan was exercised.",
            "who": "Example Incident Lead",
            "role": "Incident manager",
            "when": (today - dt.timedelta(days=100)).isoformat(),
            "expiry": (today - dt.timedelta(days=1)).isoformat(),
            "evidence": "evidence/ir.pdf",
        }
        | change,
    ]
    path = tmp_path / "attestations.yml"
    path.write_text(yaml.safe_dump({"attestations": entries}))
    return path


def _audit(local_inventory: Path, out: Path, *args: str):
    return run_audit_cli(
        "-i",
        str(local_inventory),
        "--limit",
        "localhost",
        "--out",
        str(out),
        "--policies",
        POLICIES,
        *args,
    )


def test_audit_records_attestations_and_fails_on_an_expired_one(
    local_inventory: Path, tmp_path: Path
) -> None:
    file = _attestations(tmp_path)
    out = tmp_path / "out"
    result = _audit(
        local_inventory,
        out,
        "--attestations",
        str(file),
        "--fail-on",
        "medium",
        "--format",
        "json,html,poam",
    )
    assert result.exit_code == 2, result.output
    assert "EXPIRED ATTESTATION soc2: CC7.4 by Example Incident Lead" in result.output
    results = Results.load(out / "results.json")
    statuses = {a["requirement"]: a["status"] for a in results.data["attestations"]}
    assert statuses == {"pci_dss_4: 3.7.1": "attested", "soc2: CC7.4": "expired"}
    assert 'id="attestations"' in (out / "report.html").read_text()
    poam = PlanOfActionAndMilestones.oscal_read(out / "poam.json")
    assert poam is not None and poam.poam_items
    # the same results at --fail-on critical: the expired attestation is reported only
    assert results.expired_attestations("critical") == []
    assert len(results.expired_attestations("medium")) == 1


def test_an_invalid_attestations_file_stops_the_audit(
    local_inventory: Path, tmp_path: Path
) -> None:
    file = _attestations(tmp_path, requirement="soc2: CC6.1")  # automated by rules
    out = tmp_path / "out"
    result = _audit(local_inventory, out, "--attestations", str(file))
    assert result.exit_code == 1
    assert "attestations[1].requirement" in result.output
    assert "automated by" in result.output
    assert not (out / "results.json").exists()
