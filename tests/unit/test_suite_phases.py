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



# A stand-in for the suite's pytest runs and its lint: each writes its process id and sleeps.
_STOPPED_SUITE = """
import os, sys, time
sys.path.insert(0, {scripts!r})
import suite
pids = {pids!r}
suite._command = lambda expr, args: [
    "sh", "-c", f"echo $$ >> {{pids}}; exec sleep 60"]
suite._lint_command = lambda: ["sh", "-c", f"echo $$ >> {{pids}}; exec sleep 60"]
suite._lab_down = lambda: print("lab down", flush=True)
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
suite._command = lambda expr, args: ["true"]
suite._lint_command = lambda: ["sh", "-c", "echo 'yamllint: a problem'; exit 2"]
suite._lab_down = lambda: print("lab down", flush=True)
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


# Stand-ins that write "<name> <pid>"; phase 1's ends after a few seconds, the others sleep.
_PRIORITY_SUITE = """
import sys
sys.path.insert(0, {scripts!r})
import suite
pids = {pids!r}
names = {{expr: name for name, expr in suite.SELECTIONS}}
def command(expr, args):
    rest = "sleep 4" if expr == suite.PHASE_1[1] else "exec sleep 60"
    return ["sh", "-c", f"echo {{names[expr].replace(' ', '_')}} $$ >> {{pids}}; {{rest}}"]
suite._command = command
suite._lint_command = lambda: ["sh", "-c", f"echo lint $$ >> {{pids}}; exec sleep 60"]
suite._lab_down = lambda: print("lab down", flush=True)
sys.exit(suite.main([]))
"""


def _started(path: Path, count: int) -> dict[str, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [line.split() for line in _lines_of(path)]
        if len(lines) >= count:
            return {name: int(pid) for name, pid in lines}
        time.sleep(0.1)
    raise AssertionError(f"only {_lines_of(path)} started")


def _lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _autogroup_nice(pid: int) -> int:
    text = Path(f"/proc/{pid}/autogroup").read_text()  # "/autogroup-123 nice 10"
    return int(text.split()[-1])


def test_the_unit_tests_and_the_lint_yield_to_phase_1_across_sessions(tmp_path: Path) -> None:
    """Each run leads its own session, and with the scheduler's autogroups a nice value weighs
    only inside its session: the unit tests' and the lint's sessions get nice UNIT_NICE while
    phase 1 runs (phase 1's stays 0), and 0 once phase 2 starts. On a kernel without
    autogroups the suite runs the same, with nice alone."""
    pids = tmp_path / "pids"
    script = _PRIORITY_SUITE.format(scripts=str(ROOT / "scripts"), pids=str(pids))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "M7GUARD_KEEP_LAB": ""})
    try:
        runs = _started(pids, 3)
        grouped = Path("/proc/self/autogroup").exists()
        if grouped:
            assert _autogroup_nice(runs["unit"]) == SUITE.UNIT_NICE
            assert _autogroup_nice(runs["lint"]) == SUITE.UNIT_NICE
            assert _autogroup_nice(runs["lab_to_itself"]) == 0
        runs = _started(pids, 5)  # phase 1 ended: vm1 and the container nodes started
        assert {"vm1", "container_nodes"} <= set(runs)
        if grouped:
            time.sleep(0.5)
            assert _autogroup_nice(runs["unit"]) == 0
            assert _autogroup_nice(runs["lint"]) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert "suite: stopped before its runs ended" in out, out
