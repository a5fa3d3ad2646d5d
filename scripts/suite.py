"""`make test`: the whole suite on one lab, in two phases, with vm1's work beside the rest.

vm1 runs under software emulation: its tests are the longest part of the suite and keep
one core busy, while the container tests keep the other. So, after the tests that need the
lab to themselves, two pytest processes share the lab:

  phase 1   the lab lifecycle tests (they take the lab down and up, and leave it up) and the
            tests that read every node at once (marker whole_lab); nothing else runs.
  phase 2   at the same time:
              vm     the tests that change vm1 (marker vm; they change no other node but
                     read the collector), then the unit tests;
              nodes  the tests that change container nodes (marker lab, not vm).

The three selections cover every test exactly once (tests/unit/test_suite_phases.py). The
lab's own commands are serialised by its lock, so a reset in one process waits for the
other's. The lab is taken down at the end unless M7GUARD_KEEP_LAB=1. Arguments are passed
to every pytest run. Exit status: 0 when every run passed, else 1; pytest's exit code 5 (no
test collected) counts as a failure (scripts/pytest.sh).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = ["bash", str(ROOT / "scripts" / "pytest.sh")]
INTEGRATION, UNIT = "tests/integration", "tests/unit"

EXCLUSIVE = "lab_lifecycle or whole_lab"
VM = f"not ({EXCLUSIVE}) and (vm or not lab)"
NODES = f"not ({EXCLUSIVE}) and lab and not vm"
# (name, marker expression, paths): phase 2 runs the last two side by side
PHASE_1 = ("lab to itself", EXCLUSIVE, (INTEGRATION,))
PHASE_2 = (("vm1 and unit", VM, (INTEGRATION, UNIT)), ("container nodes", NODES, (INTEGRATION,)))


def _say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def _command(expr: str, paths: tuple[str, ...], args: list[str]) -> list[str]:
    return [*PYTEST, *args, "-m", expr, *paths]


def _lab_down() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import labkit  # sets the image cache and Ansible config the tests use

    proc = subprocess.run([str(labkit.BIN / "m7guard"), "lab", "down"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        print(f"m7guard lab down exited {proc.returncode}:\n{proc.stdout}{proc.stderr}",
              file=sys.stderr)


def main(args: list[str]) -> int:
    keep = os.environ.get("M7GUARD_KEEP_LAB") == "1"
    env = {**os.environ, "M7GUARD_KEEP_LAB": "1"}  # the lab outlives each pytest run
    started = time.monotonic()
    failed: list[str] = []
    background: subprocess.Popen[bytes] | None = None
    try:
        name, expr, paths = PHASE_1
        _say(f"phase 1: the tests that need the {name} ({expr})")
        if subprocess.run(_command(expr, paths, args), cwd=ROOT, env=env,
                          check=False).returncode != 0:
            failed.append(f"phase 1 ({name})")
            _say("phase 1 failed: the lab may not be usable, phase 2 does not run")
            return 1

        (bg_name, bg_expr, bg_paths), (fg_name, fg_expr, fg_paths) = PHASE_2
        with tempfile.TemporaryDirectory(prefix="m7guard-suite-") as tmp:
            log = Path(tmp) / "vm.log"
            _say(f"phase 2: {bg_name} ({bg_expr}) in the background, its output follows the "
                 f"{fg_name} tests ({fg_expr})")
            with log.open("wb") as out:
                background = subprocess.Popen(_command(bg_expr, bg_paths, args), cwd=ROOT,
                                              env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True)
                fg = subprocess.run(_command(fg_expr, fg_paths, args), cwd=ROOT, env=env,
                                    check=False).returncode
                bg = background.wait()
                background = None
            _say(f"phase 2: {bg_name}")
            sys.stdout.write(log.read_text(errors="replace"))
            sys.stdout.flush()
        failed += [n for n, rc in ((fg_name, fg), (bg_name, bg)) if rc != 0]
    finally:
        if background is not None:  # interrupted: end the background run and its pytest
            os.killpg(background.pid, signal.SIGTERM)
            background.wait(timeout=60)
        if not keep:
            _lab_down()
        minutes = (time.monotonic() - started) / 60
        _say(f"suite: {'failed: ' + ', '.join(failed) if failed else 'passed'} "
             f"({minutes:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
