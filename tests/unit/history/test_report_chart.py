"""The HTML report's trend chart: present only with a history, one series per framework; and
`m7guard audit --history` records the audit after writing its reports."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from historykit import STARTED, make_audit, scenario_audits

import m7guard.audit.cli as audit_cli
from m7guard.cli import cli
from m7guard.history import History, lifecycle, record, report_chart
from m7guard.reports import html, render
from m7guard.results import Results

# the results file and its renderings pinned by tests/unit/reports/test_golden.py
DATA = Path(__file__).resolve().parents[2] / "fixtures" / "reports"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def series(page: str) -> list[str]:
    return re.findall(r'<g class="series" data-framework="([^"]+)">', page)


def test_without_history_the_page_is_byte_identical_to_the_renderer_before_history() -> None:
    # report.html is what html.render made of results.json (the results of
    # tests/unit/reports/conftest.py) before the history existed
    golden = (DATA / "report.html").read_text(encoding="utf-8")
    results = Results.load(DATA / "results.json")
    assert html.render(results) == golden
    assert html.render(results, None) == golden


def test_report_command_without_history_writes_the_same_page(tmp_path: Path) -> None:
    shutil.copy(DATA / "results.json", tmp_path / "results.json")
    res = run("report", str(tmp_path / "results.json"), "--format", "html")
    assert res.exit_code == 0, res.output
    golden = (DATA / "report.html").read_bytes()
    assert (tmp_path / "report.html").read_bytes() == golden
    assert b"<svg" not in golden and b'id="trend"' not in golden


def test_report_with_history_has_one_series_per_framework(
    tmp_path: Path, db: Path, results_files: list[Path]
) -> None:
    out = tmp_path / "out"
    res = run(
        "report", str(results_files[2]), "--format", "html", "--out", str(out), "--history", str(db)
    )
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 1 and 'id="trend"' in page and 'href="#trend"' in page
    assert series(page) == ["pci_dss_4", "soc2"]
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external asset
    chart = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    groups = chart.split('<g class="series"')[1:]
    # the mutation audit is recorded: three points per framework, not four
    assert [g.count("<circle") for g in groups] == [3, 3]
    assert "PCI DSS v4.0.1, 2025-03-01T10:00:00.000Z: 60.0% (3 of 5 passed)" in groups[0]
    assert "SOC 2 (2017 TSC), 2025-02-01T10:00:00.000Z: 83.3% (5 of 6 passed)" in groups[1]
    # the rest of the page is the page without history
    plain = html.render(Results.load(results_files[2]))
    start = page.index('<h2 id="trend">')
    end = page.index("<h2>Failures by severity</h2>")
    rest = page[:start] + page[end:]
    assert rest.replace('<a href="#trend">Pass rate over time</a>', "") == plain


def test_report_with_a_missing_history_is_a_clear_error(tmp_path: Path) -> None:
    shutil.copy(DATA / "results.json", tmp_path / "results.json")
    missing = tmp_path / "none.sqlite"
    res = run("report", str(tmp_path / "results.json"), "--history", str(missing))
    assert res.exit_code == 1
    assert f"no history database at {missing}" in res.output
    assert not missing.exists() and not (tmp_path / "report.html").exists()


def test_an_unrecorded_results_file_is_added_to_the_chart(tmp_path: Path, db: Path) -> None:
    later = make_audit("2025-04-01T10:00:00.000Z", {("node1", "KERN-001"): "pass"})
    page = html.render(later, report_chart(db, later))
    groups = page.split('<g class="series"')[1:]
    assert [g.count("<circle") for g in groups] == [4, 4]
    assert "2025-04-01T10:00:00.000Z: 100.0% (1 of 1 passed)" in groups[0]
    with History.open(db) as h:
        assert len(h.audits()) == 3  # rendering records nothing


def test_the_chart_leaves_out_other_profiles_and_escapes_titles(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    other = make_audit(STARTED[0], {("node1", "KERN-001"): "fail"}, profile="baseline")
    mine = make_audit(STARTED[1], {("node1", "KERN-001"): "pass"})
    mine.data["frameworks"]["soc2"]["title"] = "SOC <2>"
    for i, audit in enumerate((other, mine)):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(audit.data))
        record(db, path)
    sha = hashlib.sha256((tmp_path / "1.json").read_bytes()).hexdigest()
    chart = report_chart(db, mine, sha)
    assert chart.count("<circle") == 2  # one audit of profile pci_dss, two frameworks
    assert "SOC &lt;2&gt;" in chart and "SOC <2>" not in chart


def test_render_passes_the_chart_to_html_only(tmp_path: Path) -> None:
    results = scenario_audits()[0]
    written = render(results, ["html", "junit"], tmp_path, trend_chart="<svg>chart</svg>")
    assert "<svg>chart</svg>" in written["html"].read_text()
    assert "chart" not in written["junit"].read_text()


# -- m7guard audit --history -------------------------------------------------------------------


@pytest.fixture
def fake_audit(monkeypatch: pytest.MonkeyPatch) -> list[Results]:
    """run_audit returns the scenario's audits one after the other (no host is contacted)."""
    queue = scenario_audits()
    calls: list[Results] = []

    def fake(opts: Any, hooks: Any, log_dir: Path) -> Results:
        calls.append(queue.pop(0))
        return calls[-1]

    monkeypatch.setattr(audit_cli, "run_audit", fake)
    return calls


def test_audit_records_each_run_after_the_reports(tmp_path: Path, fake_audit: list[Results]):
    db = tmp_path / "history" / "h.sqlite"
    for name in ("before", "after", "mutation"):
        res = run(
            "audit", "-i", "inventories/lab", "--out", str(tmp_path / name),
            "--history", str(db), "--fail-on", "none",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert f"history: {db} (audit" in res.output
    assert lifecycle(db, "node1", "KERN-001").statuses == ["new", "fixed", "reopened"]
    with History.open(db) as h:
        audits = h.audits()
    assert [a.source for a in audits] == [
        str(tmp_path / name / "results.json") for name in ("before", "after", "mutation")
    ]
    sha = hashlib.sha256((tmp_path / "mutation" / "results.json").read_bytes()).hexdigest()
    assert audits[-1].source_sha256 == sha
    # the first report's chart has its own audit only; the last one has all three
    first = (tmp_path / "before" / "report.html").read_text()
    last = (tmp_path / "mutation" / "report.html").read_text()
    assert series(first) == series(last) == ["pci_dss_4", "soc2"]
    assert first.count("<circle") == 2 and last.count("<circle") == 6


def test_audit_without_history_writes_no_chart(tmp_path: Path, fake_audit: list[Results]):
    res = run("audit", "-i", "inventories/lab", "--out", str(tmp_path), "--fail-on", "none")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "report.html").read_text()
    assert page == html.render(fake_audit[0]) and "<svg" not in page


def test_audit_with_an_unusable_history_fails_before_auditing(
    tmp_path: Path, fake_audit: list[Results]
):
    res = run(
        "audit", "-i", "inventories/lab", "--out", str(tmp_path / "out"),
        "--history", str(tmp_path),
    )  # fmt: skip
    assert res.exit_code == 1
    assert "is a directory" in res.output
    assert fake_audit == [] and not (tmp_path / "out").exists()
