"""The exit code contract of `m7guard audit` and `m7guard preflight` (Results.exit_code):
an audit that proved nothing, or in which a rule could not be evaluated, does not exit 0
unless --fail-on none says so."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from unit.reports.conftest import make_results

from m7guard.results import FAIL_ON_CHOICES, Results

THRESHOLDS = [t for t in FAIL_ON_CHOICES if t != "none"]


def _only(results: Results, **states: str) -> Results:
    """The fixture's document with node1's results only, in the given states by rule."""
    rows = []
    for r in results.results:
        if r["host"] == "node1":
            row = copy.deepcopy(r) | {"state": states[r["rule"]], "waiver": None}
            row.pop("evaluated_state", None)
            rows.append(row)
    hosts = [h for h in results.data["hosts"] if h["name"] == "node1"]
    return make_results(results=rows, hosts=hosts, waivers=[], warnings=[])


@pytest.mark.parametrize("fail_on", THRESHOLDS)
def test_all_notapplicable_is_not_a_pass(results: Results, fail_on: str) -> None:
    nothing = _only(results, **{"KERN-001": "notapplicable", "KERN-014": "notapplicable"})
    assert nothing.vacuous()
    assert nothing.exit_code(fail_on) == 2


def test_no_result_at_all_is_not_a_pass() -> None:
    empty = make_results(results=[], waivers=[], warnings=[])
    assert empty.exit_code("low") == 2 and empty.exit_code("none") == 0


def test_notapplicable_and_waived_only_is_not_a_pass(results: Results) -> None:
    data: dict[str, Any] = copy.deepcopy(results.data)
    data["results"] = [r for r in data["results"] if r["state"] in ("notapplicable", "waived")]
    assert Results.validated(data).exit_code("low") == 2


@pytest.mark.parametrize("fail_on", THRESHOLDS)
def test_an_error_of_any_severity_fails(results: Results, fail_on: str) -> None:
    # KERN-014 is low: an error on it fails even when only critical findings gate
    errored = _only(results, **{"KERN-001": "pass", "KERN-014": "error"})
    assert [r["rule"] for r in errored.gating(fail_on)] == ["KERN-014"]
    assert errored.exit_code(fail_on) == 2


def test_a_low_fail_below_the_threshold_does_not_gate(results: Results) -> None:
    low_fail = _only(results, **{"KERN-001": "pass", "KERN-014": "fail"})
    assert low_fail.exit_code("low") == 2
    assert low_fail.exit_code("medium") == 0


def test_passes_with_notapplicable_exit_0(results: Results) -> None:
    ok = _only(results, **{"KERN-001": "pass", "KERN-014": "notapplicable"})
    assert not ok.vacuous()
    assert all(ok.exit_code(t) == 0 for t in FAIL_ON_CHOICES)


def test_fail_on_none_never_exits_2(results: Results) -> None:
    nothing = _only(results, **{"KERN-001": "notapplicable", "KERN-014": "error"})
    assert nothing.exit_code("none") == 0 and nothing.gating("none") == []
    assert results.exit_code("none") == 0


def test_console_names_the_gating_results(
    results: Results, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from m7guard.reports.console import print_results

    nothing = _only(results, **{"KERN-001": "notapplicable", "KERN-014": "notapplicable"})
    print_results(nothing, {}, "high", Console(stderr=True))
    assert "NOTHING EVALUATED" in capsys.readouterr().out
    errored = _only(results, **{"KERN-001": "pass", "KERN-014": "error"})
    print_results(errored, {}, "critical", Console(stderr=True))
    assert "ERROR node1 KERN-014 (low)" in capsys.readouterr().out
