"""The checks run as plain pytest (read-only on this machine through local://)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from m7guard.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[3]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "m7guard/checks/kernel.py",
            "--hosts=local://",
            "-q",
            "--tb=no",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )


def test_profile_selects_the_checks_and_events_are_written(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    proc = _pytest("--m7guard-profile=hipaa", f"--m7guard-events={events}")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    catalog = load_catalog(ROOT / "policies")
    hipaa = {r.id for r in catalog.rules_for(catalog.profile("hipaa")) if r.area == "kernel"}
    assert f"{16 - len(hipaa)} deselected" in proc.stdout
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    (collected,) = [e for e in lines if e["type"] == "collected"]
    assert set(collected["hosts"]["localhost"]) == hipaa
    (host,) = [e for e in lines if e["type"] == "host"]
    assert host["host"] == "localhost" and host["error"] is None
    results = [e for e in lines if e["type"] == "result"]
    assert {r["rule"] for r in results} == hipaa
    assert {r["state"] for r in results} <= {"pass", "fail", "notapplicable"}
    for r in results:
        if r["state"] == "fail":
            assert r["message"] and r["evidence"]["sysctl"]


def test_unknown_profile_is_a_usage_error() -> None:
    proc = _pytest("--m7guard-profile=nope")
    assert proc.returncode == 4
    assert "unknown profile 'nope'" in proc.stdout + proc.stderr
