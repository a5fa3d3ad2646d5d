"""The SARIF report's links: the tool's informationUri and each rule's helpUri come from the
address the operator publishes m7guard's docs/ at (`m7guard audit --docs-url`, recorded in the
results file), and point at the rule's row of the generated rule table. Without an address
none is written: m7guard has none of its own to invent. The official validator
(@microsoft/sarif-multitool, scripts/test-tools.sh) reports nothing on a report with links and
SARIF2005 on one without. The HTML report links each rule id to the same row, under the same
condition."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sarifkit import findings

from m7guard.catalog.loader import load_catalog
from m7guard.catalog.model import RULES_PAGE, rule_anchor
from m7guard.cli import cli
from m7guard.errors import M7guardError
from m7guard.reports import html, sarif
from m7guard.results import Results, ResultsError, docs_address

from .conftest import make_results

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def _with_docs(url: str | None) -> Results:
    data: dict[str, Any] = make_results().data
    if url is not None:
        data["tool"]["docs_url"] = url
    return Results.validated(data)


@pytest.mark.parametrize(
    ("given", "address"),
    [
        ("https://docs.example.com/m7guard", "https://docs.example.com/m7guard/"),
        ("https://docs.example.com/m7guard/", "https://docs.example.com/m7guard/"),
        ("http://127.0.0.1:8000/docs", "http://127.0.0.1:8000/docs/"),
        ("file:///srv/m7guard/docs", "file:///srv/m7guard/docs/"),
    ],
)
def test_a_docs_address_ends_with_a_slash(given: str, address: str) -> None:
    assert docs_address(given) == address


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("docs/", "not an absolute URL"),
        ("ftp://docs.example.com/", "not an absolute URL"),
        ("https:///m7guard/", "names no host"),
        ("file://docs", "absolute path"),
        ("https://docs.example.com/m7guard/?v=1", "no query or fragment"),
        ("https://docs.example.com/m7guard/#top", "no query or fragment"),
    ],
)
def test_a_docs_address_that_cannot_carry_rule_links_is_refused(given: str, why: str) -> None:
    with pytest.raises(M7guardError, match=why):
        docs_address(given)


def test_the_results_schema_refuses_a_docs_url_docs_address_would_not_give() -> None:
    with pytest.raises(ResultsError, match="tool/docs_url"):
        _with_docs("https://docs.example.com/m7guard?v=1")


def test_with_an_address_the_tool_and_every_rule_link_to_the_docs() -> None:
    doc = json.loads(sarif.render(_with_docs("https://docs.example.com/m7guard/")))
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert driver["informationUri"] == "https://docs.example.com/m7guard/"
        assert [r["helpUri"] for r in driver["rules"]] == [
            f"https://docs.example.com/m7guard/{RULES_PAGE}#kern-001",
            f"https://docs.example.com/m7guard/{RULES_PAGE}#kern-014",
        ]


def test_without_an_address_no_link_is_written() -> None:
    doc = json.loads(sarif.render(_with_docs(None)))
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert "informationUri" not in driver
        assert all("helpUri" not in r for r in driver["rules"])


def test_with_an_address_the_html_report_links_every_rule_id_to_its_row() -> None:
    page = html.render(_with_docs("https://docs.example.com/m7guard/"))
    assert page.startswith("<!DOCTYPE html>")
    for rid in ("KERN-001", "KERN-014"):
        link = (f'<a href="https://docs.example.com/m7guard/{RULES_PAGE}#{rule_anchor(rid)}">'
                f"{rid}</a>")
        # the host by rule matrix, and the rule's section under "Failing rules" (each fails
        # or errors on a host of the results)
        assert page.count(link) == 2, rid


def test_without_an_address_the_html_report_has_no_link() -> None:
    page = html.render(_with_docs(None))
    assert "<a href=" not in page.split('id="matrix"')[1]
    assert RULES_PAGE not in page


def test_every_rule_of_the_catalog_has_its_anchor_in_the_generated_rule_table() -> None:
    page = (DOCS / RULES_PAGE).read_text(encoding="utf-8")
    catalog = load_catalog(REPO / "policies")
    missing = [rid for rid in catalog.rules if f'<a id="{rule_anchor(rid)}"></a>' not in page]
    assert missing == []
    assert page.count("<a id=") == len(catalog.rules)


def _validate(tmp_path: Path, results: Results) -> list[str]:
    path = tmp_path / "results.sarif"
    path.write_text(sarif.render(results), encoding="utf-8")
    return findings(path)


def test_the_official_validator_finds_nothing_when_the_docs_address_is_given(
    tmp_path: Path,
) -> None:
    assert _validate(tmp_path, _with_docs(DOCS.as_uri() + "/")) == []


def test_the_official_validator_warns_without_the_docs_address(tmp_path: Path) -> None:
    findings = _validate(tmp_path, _with_docs(None))
    assert findings and all("SARIF2005" in ln and "informationUri" in ln for ln in findings)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_audit_refuses_a_bad_docs_address_before_it_reads_a_host(
    tmp_path: Path, how: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    out = tmp_path / "out"
    args = ["audit", "-i", str(inventory), "--out", str(out), "--policies", str(REPO / "policies")]
    env = {}
    if how == "option":
        args += ["--docs-url", "docs/"]
    else:
        env["M7GUARD_DOCS_URL"] = "docs/"
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 2, result.output
    assert "--docs-url" in result.output and "not an absolute URL" in result.output
    assert not out.exists()
