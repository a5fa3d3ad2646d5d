"""`make test` (scripts/suite.py) runs every test exactly once: its four marker selections
over the same paths cover every combination of the suite's lab markers once, and every
integration module says that it needs the lab (a module without the marker would run with
the unit tests, beside the lab tests)."""

from __future__ import annotations

import ast
import importlib.util
import itertools
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ("lab", "vm", "whole_lab", "lab_lifecycle")


def _suite():
    spec = importlib.util.spec_from_file_location("suite", ROOT / "scripts" / "suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUITE = _suite()
SELECTIONS = SUITE.SELECTIONS


@pytest.mark.parametrize("marks", [
    frozenset(c) for n in range(len(MARKERS) + 1) for c in itertools.combinations(MARKERS, n)
], ids=lambda m: "+".join(sorted(m)) or "none")
def test_every_marker_combination_runs_in_exactly_one_selection(marks: frozenset[str]) -> None:
    chosen = [name for name, expr in SELECTIONS
              if Expression.compile(expr).evaluate(lambda m, **_kw: m in marks)]
    assert len(chosen) == 1, (sorted(marks), chosen)


def test_every_run_collects_the_whole_suite_and_lab_tests_are_marked() -> None:
    assert SUITE.PATHS == ("tests",)
    for module in sorted((ROOT / "tests" / "integration").glob("test_*.py")):
        marks = set()
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
                marks |= {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)
                          and n.attr in MARKERS}
        assert "lab" in marks, f"{module.name}: pytestmark has no lab marker"

