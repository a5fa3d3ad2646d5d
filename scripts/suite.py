"""`make test`: the whole suite on one lab, with vm1's work beside the rest.

vm1 runs under software emulation: its tests are a long part of the suite and keep one core
busy, while the container tests keep the other. So, after the tests that need the lab to
themselves, the rest runs as parallel pytest processes sharing the lab:

  unit      the tests without the lab, started first: they run beside phase 1 and never
            touch the lab. They run at a lower CPU priority (nice UNIT_NICE) while phase 1,
            the suite's critical path then, runs: on two busy cores they take what it
            leaves. From phase 2 on they take an equal share (its runs end at about the
            same time, and a unit test starved for minutes could run into its timeouts).
  lint      `make lint` (ruff, yamllint, ansible-lint, the changelog), beside phase 1 at the
            unit tests' priority: ansible-lint keeps one core busy for about a minute, which
            before phase 1 would be a minute of one idle core. A lint failure fails the suite.
  phase 1   the lab lifecycle tests (they take the lab down and up, and leave it up) and the
            tests that read every node at once (marker whole_lab); no other lab test runs.
  phase 2   side by side:
              vm1     the tests that change vm1 (marker vm; they change no other node but
                      read the collector);
              nodes   the tests that change container nodes (marker lab, not vm).
            The two keep both cores busy: a third run beside them (the container modules
            split between this lab and a second one) made every run slower and the suite
            no shorter (docs/platforms.md).

Every run collects the same paths, and the four marker selections cover every test exactly
once (tests/unit/test_suite_phases.py). The lab's own commands are serialised by its lock,
so a node reset in one process waits for the other's. Each run's output is printed when it
ends. The lab is taken down at the end unless M7GUARD_KEEP_LAB=1. Arguments are passed to
every pytest run. Exit status: 0 when every run passed, else 1; pytest's exit code 5 (no
test collected) counts as a failure (scripts/pytest.sh).

The unit tests and the lint run in their own session, and on a kernel that groups a
session's processes for the scheduler (autogroup, sched(7)) a process's nice value weighs
only against the processes of its own session: their session's autogroup gets UNIT_NICE as
well, or they would take an equal share of the cores from phase 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = ["bash", str(ROOT / "scripts" / "pytest.sh")]

EXCLUSIVE = "lab_lifecycle or whole_lab"
PATHS = ("tests",)
# (name, marker expression)
PHASE_1 = ("lab to itself", EXCLUSIVE)
VM = ("vm1", f"not ({EXCLUSIVE}) and vm")
NODES = ("container nodes", f"not ({EXCLUSIVE}) and not vm and lab")
UNIT = ("unit", f"not ({EXCLUSIVE}) and not vm and not lab")
SELECTIONS = (PHASE_1, VM, NODES, UNIT)
UNIT_NICE = 10  # nice of the unit run and the lint (and of what they start) during phase 1


def _say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def _command(expr: str, args: list[str]) -> list[str]:
    return [*PYTEST, *args, "-m", expr, *PATHS]


def _autogroup(pid: int, nice: int) -> None:
    """Give the session PID leads (a run started with start_new_session) nice NICE for the
    scheduler's autogroup of that session; a kernel without autogroups has no such file, and
    there nice alone applies."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")


def _lint_command() -> list[str]:
    """The Makefile's lint target: its commands are written there alone."""
    return ["make", "--no-print-directory", "-C", str(ROOT), "lint"]


class _Run:
    """One process beside the others (a pytest run, or the lint), its output kept in a file
    until it ends."""

    def __init__(self, name: str, command: list[str], what: str, env: dict[str, str],
                 tmp: Path, nice: int = 0) -> None:
        self.name, self.log = name, tmp / f"{name.replace(' ', '-')}.log"
        self.started = time.monotonic()
        if nice:
            command = ["nice", "-n", str(nice), *command]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.nice(nice)
        _say(f"{name}: started ({what}{f', nice {nice}' if nice else ''})")

    def nice(self, nice: int) -> None:
        """The run's session gets NICE (its autogroup: see the module's docstring)."""
        if self.proc.poll() is None:
            _autogroup(self.proc.pid, nice)

    @classmethod
    def tests(cls, name: str, expr: str, args: list[str], env: dict[str, str], tmp: Path,
              nice: int = 0) -> _Run:
        return cls(name, _command(expr, args), expr, env, tmp, nice)

    def report(self) -> int:
        rc = self.proc.returncode
        minutes = (time.monotonic() - self.started) / 60
        _say(f"{self.name}: exit {rc} after {minutes:.1f} min; its output:")
        sys.stdout.write(self.log.read_text(errors="replace"))
        sys.stdout.flush()
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:  # interrupted: end the run and its pytest
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


def _lab_down() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import labkit  # sets the image cache and Ansible config the tests use

    proc = subprocess.run([str(labkit.BIN / "m7guard"), "lab", "down"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        print(f"m7guard lab down exited {proc.returncode}:\n{proc.stdout}{proc.stderr}",
              file=sys.stderr)


def _byte_compile() -> None:
    """Byte-compile the checkout before the runs. Every m7guard command of the suite (hundreds
    of audits and lab commands, each a new process) imports the package; where the
    environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE), each of them would compile
    it again. The bytecode goes where Python keeps it, the __pycache__ directories git ignores."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-m", "compileall", "-q", "m7guard", "tests", "scripts"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # a syntax error: the runs that import the file will say so
        print(f"compileall exited {proc.returncode}:\n{proc.stdout}{proc.stderr}", file=sys.stderr)


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # a TERM (a CI time limit) still stops the runs and the lab


def main(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    keep = os.environ.get("M7GUARD_KEEP_LAB") == "1"
    env = {**os.environ, "M7GUARD_KEEP_LAB": "1"}  # the lab outlives each pytest run
    started = time.monotonic()
    failed: list[str] = []
    runs: list[_Run] = []
    phase_1: subprocess.Popen | None = None
    ended = False  # every run ended (not a signal or an error of this script)
    _byte_compile()
    try:
        with tempfile.TemporaryDirectory(prefix="m7guard-suite-") as tmp:
            runs = [_Run.tests(*UNIT, args, env, Path(tmp), nice=UNIT_NICE),
                    _Run("lint", _lint_command(), "make lint", env, Path(tmp),
                         nice=UNIT_NICE)]
            name, expr = PHASE_1
            _say(f"phase 1: the tests that need the {name} ({expr}), the unit tests and the "
                 "lint beside")
            # its own session, like the other runs: a stopped suite ends pytest, not only bash
            phase_1 = subprocess.Popen(_command(expr, args), cwd=ROOT, env=env,
                                       start_new_session=True)
            if phase_1.wait():
                failed.append(f"phase 1 ({name})")
                _say("phase 1 failed: the lab may not be usable, phase 2 does not run")
            else:
                _say("phase 2: vm1 and the container nodes side by side")
                for run in runs:  # the unit tests and the lint, if still running
                    run.nice(0)
                runs += [_Run.tests(*VM, args, env, Path(tmp)),
                         _Run.tests(*NODES, args, env, Path(tmp))]
            active = list(runs)
            while active:
                time.sleep(2)
                for run in [r for r in active if r.proc.poll() is not None]:
                    active.remove(run)
                    if run.report() != 0:
                        failed.append(run.name)
            ended = True
    finally:
        if phase_1 is not None and phase_1.poll() is None:
            os.killpg(phase_1.pid, signal.SIGTERM)
            phase_1.wait(timeout=60)
        for run in runs:
            run.stop()
        if not keep:
            _lab_down()
        minutes = (time.monotonic() - started) / 60
        if failed:
            verdict = "failed: " + ", ".join(failed)
        elif ended:
            verdict = "passed"
        else:
            verdict = "stopped before its runs ended"
        _say(f"suite: {verdict} ({minutes:.1f} min)")
    return 0 if ended and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
