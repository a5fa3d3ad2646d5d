"""Audit history: compliance over time from recorded results files (`m7guard history`).

The database is described in m7guard/history/store.py, the counting rules and the finding
lifecycle in m7guard/history/analysis.py, and both in docs/history.md.
"""

from __future__ import annotations

from pathlib import Path

from m7guard.history.analysis import (
    Filters,
    Lifecycle,
    Rate,
    framework_series,
    lifecycle,
    lifecycles,
    load_snapshots,
    snapshot_of,
)
from m7guard.history.chart import svg
from m7guard.history.store import (
    SCHEMA_VERSION,
    History,
    HistoryError,
    Recorded,
    default_db_path,
)
from m7guard.results import Results

__all__ = [
    "SCHEMA_VERSION",
    "Filters",
    "History",
    "HistoryError",
    "Lifecycle",
    "Rate",
    "Recorded",
    "default_db_path",
    "lifecycle",
    "lifecycles",
    "record",
    "report_chart",
]

UNRECORDED_ID = -1


def record(db: Path | str, results_file: Path | str) -> Recorded:
    """Record one results file into the database at db (created if absent)."""
    with History.open(Path(db), create=True) as history:
        return history.record_file(Path(results_file))


def report_chart(
    db: Path | str, results: Results, sha256: str | None = None, *, create: bool = False
) -> str:
    """The SVG trend chart for the HTML report of results: the pass rate per framework over
    the recorded audits of the same profile, and results itself when it is not recorded."""
    with History.open(Path(db), create=create) as history:
        snaps = load_snapshots(history, results.data["profile"]["id"])
        current = history.find(sha256) if sha256 else None
    if current is None:
        current = UNRECORDED_ID
        snaps.append(snapshot_of(results, UNRECORDED_ID, sha256 or ""))
        snaps.sort(key=lambda s: (s.audit.started, s.audit.id))
    frameworks = set(results.data["profile"]["frameworks"])
    series = {fw: entry for fw, entry in framework_series(snaps).items() if fw in frameworks}
    return svg(series, current)
