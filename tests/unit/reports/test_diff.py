"""`m7guard diff` on two results that differ in every way it reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from click.testing import CliRunner

from m7guard.cli import cli
from m7guard.diff import compare, render_markdown, render_text
from m7guard.results import Results


def _files(results: Results, tmp_path: Path) -> tuple[Path, Path]:
    old = copy.deepcopy(results.data)
    new = copy.deepcopy(results.data)
    # node1 KERN-001 pass -> fail (newly failing); node2 KERN-001 fail -> pass (newly passing);
    # node2 KERN-014 waived -> fail (newly failing, low); ghost KERN-001 stays error
    # node1 KERN-014 notapplicable -> pass (other change)
    cells = {(r["host"], r["rule"]): r for r in new["results"]}
    cells[("node1", "KERN-001")].update(state="fail", message="now 0")
    cells[("node2", "KERN-001")].update(state="pass", message="")
    cells[("node2", "KERN-014")].update(state="fail", waiver=None)
    cells[("node2", "KERN-014")].pop("evaluated_state")
    cells[("node1", "KERN-014")].update(state="pass")
    # a rule only in NEW, a rule only in OLD, a host only in NEW, a host only in OLD
    new["rules"]["KERN-016"] = copy.deepcopy(new["rules"]["KERN-001"]) | {"title": "Broadcasts"}
    new["results"].append(
        {
            "host": "node1",
            "rule": "KERN-016",
            "state": "pass",
            "message": "",
            "evidence": {},
            "duration": 0.0,
            "waiver": None,
        }
    )
    old["rules"]["KERN-099"] = copy.deepcopy(old["rules"]["KERN-001"]) | {"title": "Retired"}
    old["results"].append(
        {
            "host": "node1",
            "rule": "KERN-099",
            "state": "fail",
            "message": "",
            "evidence": {},
            "duration": 0.0,
            "waiver": None,
        }
    )
    new["hosts"].append({"name": "node4", "reachable": True, "error": None})
    old["hosts"].append({"name": "node0", "reachable": True, "error": None})
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    return a, b


def test_compare_finds_every_kind_of_change(results: Results, tmp_path: Path) -> None:
    a, b = _files(results, tmp_path)
    d = compare(Results.load(a), Results.load(b))
    assert [(c.host, c.rule, c.old, c.new) for c in d.newly_failing] == [
        ("node1", "KERN-001", "pass", "fail"),  # high before low
        ("node2", "KERN-014", "waived", "fail"),
    ]
    assert [(c.host, c.rule) for c in d.newly_passing] == [("node2", "KERN-001")]
    assert [(c.host, c.rule, c.old, c.new) for c in d.other_changes] == [
        ("node1", "KERN-014", "notapplicable", "pass")
    ]
    assert d.added_rules == [("KERN-016", "Broadcasts")]
    assert d.removed_rules == [("KERN-099", "Retired")]
    assert d.added_hosts == ["node4"] and d.removed_hosts == ["node0"]
    assert d.still_failing == 2  # ghost's two errors


def test_text_output_puts_newly_failing_first(results: Results, tmp_path: Path) -> None:
    a, b = _files(results, tmp_path)
    out = CliRunner().invoke(cli, ["diff", str(a), str(b)]).output
    order = [
        out.index(s)
        for s in (
            "Newly failing (2)",
            "Newly passing (1)",
            "Other state changes (1)",
            "Added rules (1)",
            "Removed rules (1)",
            "Added hosts (1)",
            "Removed hosts (1)",
        )
    ]
    assert order == sorted(order)
    assert out.startswith("2 newly failing, 1 newly passing")
    assert "node1  KERN-001  high  pass -> fail  now 0" in out


def test_markdown_output_for_a_pull_request(results: Results, tmp_path: Path) -> None:
    a, b = _files(results, tmp_path)
    out = CliRunner().invoke(cli, ["diff", str(a), str(b), "--format", "markdown"]).output
    assert out.startswith("### :x: m7guard audit diff")
    assert "#### Newly failing (2)" in out
    assert "| node1 | KERN-001 | high | pass -> fail | now 0 |" in out
    assert "#### Removed hosts (1)" in out and "| node0 |" in out
    assert out.index("Newly failing") < out.index("Newly passing")


def test_identical_results_have_no_changes(results: Results) -> None:
    d = compare(results, results)
    assert d.empty and d.still_failing == 3
    assert render_text(d).startswith("0 newly failing")
    assert ":white_check_mark:" in render_markdown(d)


def test_diff_of_unreadable_file_exits_1(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{")
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "x.json"), str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "is not JSON" in result.output
