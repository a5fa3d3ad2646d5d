"""Fixtures of the history tests: the scenario of tests/historykit.py as files and a database."""

from __future__ import annotations

from pathlib import Path

import pytest
from historykit import scenario_audits, write


@pytest.fixture
def results_files(tmp_path: Path) -> list[Path]:
    """before/results.json, after/results.json, mutation/results.json."""
    names = ("before", "after", "mutation")
    return [
        write(r, tmp_path / name / "results.json")
        for name, r in zip(names, scenario_audits(), strict=True)
    ]


@pytest.fixture
def db(tmp_path: Path, results_files: list[Path]) -> Path:
    """A history with the three audits, imported out of order (time orders them)."""
    from m7guard.history import record

    path = tmp_path / "state" / "history.sqlite"
    for f in (results_files[2], results_files[0], results_files[1]):
        assert record(path, f).added
    return path
