"""`make test` (scripts/suite.py) runs every test exactly once: its four marker selections
over the same paths cover every combination of the suite's lab markers once, and every
integration module says that it needs the lab (a module without the marker would run with
the unit tests, beside the lab tests)."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
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


def _collected(command: list[str]) -> list[str]:
    """The test ids COMMAND (a suite run's pytest command) selects: pytest --collect-only."""
    pytest_args = command[command.index("-m"):]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--collect-only", "-q", *pytest_args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_the_container_tests_are_split_between_two_labs_each_module_once() -> None:
    """The container-node selection runs as two runs on two labs: together they collect
    exactly the tests the selection collects on the whole suite, none twice; the second lab
    (without vm1) gets whole modules of container tests alone, the first the other modules."""
    first, second = SUITE.lab_ids()
    assert first != second and 0 <= second <= 9
    (_, on_first, env_first), (_, on_second, env_second) = SUITE.container_runs([], first, second)
    assert env_first == {} and env_second == {"M7GUARD_LAB_ID": str(second),
                                              "M7GUARD_LAB_NO_VM": "1"}
    whole = _collected(SUITE._command(SUITE.NODES[1], []))
    a, b = _collected(on_first), _collected(on_second)
    assert a and b and not set(a) & set(b)
    assert sorted(a + b) == sorted(whole)
    modules = {test.split("::")[0] for test in b}
    assert modules == set(SUITE.SECOND_LAB)
    for path in SUITE.SECOND_LAB:  # no test there needs vm1 or the lab to itself
        marks = {n.attr for n in ast.walk(ast.parse((ROOT / path).read_text()))
                 if isinstance(n, ast.Attribute) and n.attr in MARKERS}
        assert marks == {"lab"}, (path, marks)


@pytest.mark.parametrize("value, expected", [("", (0, 1)), ("4", (4, 5)), ("9", (9, 8))])
def test_the_second_lab_is_the_next_one(monkeypatch: pytest.MonkeyPatch, value: str,
                                       expected: tuple[int, int]) -> None:
    monkeypatch.setenv("M7GUARD_LAB_ID", value)
    assert SUITE.lab_ids() == expected



# A stand-in for the suite's pytest runs and its lint: each writes its process id and sleeps.
_STOPPED_SUITE = """
import os, sys, time
sys.path.insert(0, {scripts!r})
import suite
pids = {pids!r}
suite._command = lambda expr, args, paths=(): [
    "sh", "-c", f"echo $$ >> {{pids}}; exec sleep 60"]
suite._lint_command = lambda: ["sh", "-c", f"echo $$ >> {{pids}}; exec sleep 60"]
suite._lab_down = lambda lab_id: print("lab down", lab_id, flush=True)
sys.exit(suite.main([]))
"""


def test_a_stopped_suite_ends_every_run_and_does_not_say_passed(tmp_path: Path) -> None:
    """A TERM (a CI time limit) while phase 1, the unit run and the lint are running: all three
    end with their process groups, the lab is taken down, the summary says the suite stopped,
    and the exit status is not 0."""
    pids = tmp_path / "pids"
    script = _STOPPED_SUITE.format(scripts=str(ROOT / "scripts"), pids=str(pids))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "M7GUARD_KEEP_LAB": ""})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(_lines(pids)) < 3:
        time.sleep(0.1)
    assert len(_lines(pids)) == 3, "phase 1, the unit run and the lint did not all start"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "lab down" in out
    assert "suite: stopped before its runs ended" in out and "passed" not in out, out
    for pid in _lines(pids):
        assert not Path(f"/proc/{pid}").exists(), f"run {pid} outlived the suite"


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


_FAILED_LINT = """
import sys
sys.path.insert(0, {scripts!r})
import suite
suite._command = lambda expr, args, paths=(): ["true"]
suite._lint_command = lambda: ["sh", "-c", "echo 'yamllint: a problem'; exit 2"]
suite._lab_down = lambda lab_id: print("lab down", lab_id, flush=True)
sys.exit(suite.main([]))
"""


def test_a_lint_failure_fails_the_suite_and_its_output_is_shown() -> None:
    """The lint runs beside phase 1 (not before the suite): when it fails, the suite fails,
    names it, and prints what it said, though every test run passed."""
    script = _FAILED_LINT.format(scripts=str(ROOT / "scripts"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "M7GUARD_KEEP_LAB": ""}, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "suite: failed: lint" in out, out
    assert "yamllint: a problem" in out, out
