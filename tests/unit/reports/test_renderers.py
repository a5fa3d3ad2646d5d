"""Each report format rendered from one small results document with every state."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from m7guard.errors import M7guardError
from m7guard.reports import html, junit, oscal, parse_formats, prom, render, sarif
from m7guard.results import Results


def test_results_views(results: Results) -> None:
    assert results.counts() == {
        "pass": 1, "fail": 1, "error": 2, "notapplicable": 1, "waived": 1, "notchecked": 0
    }
    assert [r["host"] for r in results.failing("low")] == ["node2", "ghost", "ghost"]
    assert [r["rule"] for r in results.failing("high")] == ["KERN-001", "KERN-001"]
    # ghost's errors fail at every threshold (an error of any severity gates)
    assert results.exit_code("critical") == 2 and results.exit_code("high") == 2
    assert results.exit_code("none") == 0
    statuses = {s.id: s for s in results.requirement_statuses("pci_dss_4")}
    assert statuses["2.2.6"].status == "not-satisfied" and statuses["2.2.6"].failing == (
        "KERN-001",
    )
    assert statuses["2.2.1"].status == "not-satisfied"  # ghost's KERN-014 error
    assert statuses["8.4.2"].status == "manual"


def test_html_escapes_host_data_and_lists_manual_requirements(results: Results) -> None:
    page = html.render(results)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "0 &amp; &lt;b&gt;" in page
    assert "evidence needed: MFA enrolment records" in page
    assert "ansible-playbook playbooks/site.yml --tags KERN-001" in page
    assert "@media print" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external assets
    waivers = page.split('id="waivers"')[1].split('id="requirements"')[0]
    assert "Edge node behind NAT" in waivers and "2030-01-01" in waivers


def test_junit_counts_equal_the_results(results: Results, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(junit.render(results))
    xml = JUnitXml.fromfile(str(path))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == 6
    kinds = [type(r) for case in cases for r in case.result]
    assert kinds.count(Failure) == 1 and kinds.count(Error) == 2 and kinds.count(Skipped) == 2
    suites = {s.name: s for s in xml}
    assert (suites["ghost"].tests, suites["ghost"].errors) == (2, 2)
    raw = path.read_text()
    assert '<property name="pci_dss_4" value="2.2.6" />' in raw
    assert 'tests="6" failures="1" errors="2" skipped="2"' in raw


def test_sarif_locates_every_result_at_its_rule_file(results: Results) -> None:
    doc = json.loads(sarif.render(results))
    assert doc["version"] == "2.1.0"
    assert [r["automationDetails"]["id"] for r in doc["runs"]] == [
        "m7guard/baseline/node1/",
        "m7guard/baseline/node2/",
        "m7guard/baseline/ghost/",
    ]
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["KERN-001"]["properties"]["security-severity"] == "8.0"
    assert rules["KERN-014"]["properties"]["security-severity"] == "3.0"
    every = [res for run in doc["runs"] for res in run["results"]]
    assert len(every) == 6
    for res in every:
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("policies/rules/kernel/KERN-")
        assert res["level"] == "none" or res["kind"] == "fail"
    waived = next(r for r in every if r["properties"]["state"] == "waived")
    assert waived["suppressions"][0]["status"] == "accepted"
    assert "Edge node behind NAT" in waived["suppressions"][0]["justification"]


def test_oscal_parses_with_trestle(results: Results, tmp_path: Path) -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    path = tmp_path / "assessment-results.json"
    path.write_text(oscal.render(results))
    model = AssessmentResults.oscal_read(path)
    (result,) = model.results
    states = {f.target.target_id: f.target.status.state.value for f in result.findings}
    assert states == {
        "pci_dss_4-2.2.1": "not-satisfied",
        "pci_dss_4-2.2.6": "not-satisfied",
        "pci_dss_4-8.4.2": "not-satisfied",
    }
    manual = next(f for f in result.findings if f.target.target_id == "pci_dss_4-8.4.2")
    assert "evidence needed" in manual.remarks
    assert len(result.observations) == 6
    assert oscal.token("hipaa", "164.308(a)(1)(ii)(D)") == "hipaa-164.308_a_1_ii_D"


PROM_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$'
)


def test_prometheus_text_format(results: Results) -> None:
    text = prom.render(results)
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or PROM_LINE.match(line), (
            line
        )
    assert (
        'm7guard_rule_status{host="node2",rule="KERN-001",severity="high",state="fail",'
        'profile="baseline"} 1'
    ) in text
    assert 'm7guard_results{host="ghost",state="error",profile="baseline"} 2' in text
    assert 'm7guard_host_reachable{host="ghost",profile="baseline"} 0' in text
    assert 'm7guard_audit_duration_seconds{profile="baseline"} 3.500' in text
    assert (
        'm7guard_framework_requirements{framework="pci_dss_4",status="manual",profile="baseline"} 1'
        in text
    )


def test_render_writes_the_requested_formats(results: Results, tmp_path: Path) -> None:
    written = render(results, parse_formats("all"), tmp_path)
    assert list(written) == ["json", "html", "junit", "sarif", "oscal", "prom", "poam"]
    assert Results.load(written["json"]).data == results.data
    with pytest.raises(M7guardError, match="unknown report format"):
        parse_formats("html,docx")
