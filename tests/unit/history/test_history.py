"""m7guard history: recording audits, pass rates, finding lifecycles, expiring waivers."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from historykit import CATALOG, STARTED, WAIVER_EXPIRES, make_audit, scenario_audits, write

from m7guard.cli import cli
from m7guard.history import History, HistoryError, lifecycle, record
from m7guard.history.analysis import walk


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def show_json(db: Path, *args: str) -> dict[str, Any]:
    res = run("history", "show", "--db", str(db), "--format", "json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def audit_ids(db: Path) -> list[int]:
    """Audit ids in time order (the fixture imports them out of order)."""
    with History.open(db) as h:
        return [a.id for a in h.audits()]


# -- lifecycle -------------------------------------------------------------------------------


def test_mutated_rule_is_new_then_fixed_then_reopened(db: Path) -> None:
    before, after, mutation = audit_ids(db)
    life = lifecycle(db, "node1", "KERN-001")
    assert life.statuses == ["new", "fixed", "reopened"]
    assert [e.audit_id for e in life.events] == [before, after, mutation]
    assert [e.state for e in life.events] == ["fail", "pass", "fail"]
    first, second = life.episodes
    assert (first.opened, first.fixed, first.reopened) == (STARTED[0], STARTED[1], False)
    assert (second.opened, second.fixed, second.reopened) == (STARTED[2], None, True)
    assert life.open and life.current == "reopened"


def test_other_rules_are_fixed_and_stay_fixed(db: Path) -> None:
    assert lifecycle(db, "node2", "KERN-001").statuses == ["new", "fixed", "pass"]
    assert lifecycle(db, "node1", "NET-003").statuses == ["new", "fixed", "pass"]
    assert lifecycle(db, "node1", "IDN-011").statuses == ["new", "fixed", "pass"]
    # notapplicable after the fix neither reopens nor passes
    life = lifecycle(db, "node1", "KERN-014")
    assert life.statuses == ["new", "fixed", "notapplicable"] and not life.open
    assert lifecycle(db, "node2", "NET-003").statuses == ["pass", "pass", "pass"]


def test_error_opens_a_finding_that_persists_then_is_fixed(db: Path) -> None:
    life = lifecycle(db, "node2", "KERN-014")
    assert [e.state for e in life.events] == ["error", "fail", "pass"]
    assert life.statuses == ["new", "persisting", "fixed"]
    assert len(life.episodes) == 1
    assert (life.episodes[0].opened, life.episodes[0].fixed) == (STARTED[0], STARTED[2])


def test_waived_is_shown_as_waived_never_as_passing_or_failing(db: Path) -> None:
    life = lifecycle(db, "node2", "IDN-011")
    assert life.statuses == ["waived", "waived", "waived"]
    assert life.episodes == [] and not life.open


@pytest.mark.parametrize(
    ("states", "statuses"),
    [
        (["fail", "waived", "fail"], ["new", "waived", "persisting"]),
        (["fail", "notchecked", "pass"], ["new", "notchecked", "fixed"]),
        (["fail", "pass", "notapplicable", "error"], ["new", "fixed", "notapplicable", "reopened"]),
        (
            ["pass", "error", "error", "pass", "fail"],
            ["pass", "new", "persisting", "fixed", "reopened"],
        ),
        (["waived", "pass", "fail"], ["waived", "pass", "new"]),
    ],
)
def test_walk_counts_each_state(states: list[str], statuses: list[str]) -> None:
    life = walk("h", "R", [(i, f"2025-01-0{i + 1}", s) for i, s in enumerate(states)])
    assert life.statuses == statuses


def test_lifecycle_of_an_unknown_cell_is_an_error(db: Path) -> None:
    with pytest.raises(HistoryError, match="no recorded result for rule KERN-001 on host ghost"):
        lifecycle(db, "ghost", "KERN-001")


# -- pass rates --------------------------------------------------------------------------------


def rates(entry: dict[str, Any]) -> list[tuple[int, int]]:
    return [(p["passed"], p["evaluated"]) for p in entry["points"]]


def test_pass_rates_per_framework_and_rule_are_exact(db: Path) -> None:
    doc = show_json(db)
    fws = doc["frameworks"]
    assert list(fws) == ["pci_dss_4", "soc2"]
    # pci_dss_4: KERN-001, KERN-014, IDN-011 on two nodes; waived counts as evaluated, not
    # passed; notapplicable (node1 KERN-014 in the mutation audit) counts in neither
    assert rates(fws["pci_dss_4"]) == [(0, 6), (4, 6), (3, 5)]
    assert [p["rate"] for p in fws["pci_dss_4"]["points"]] == [0.0, 4 / 6, 0.6]
    # soc2: KERN-001, NET-003, IDN-011
    assert rates(fws["soc2"]) == [(1, 6), (5, 6), (4, 6)]
    assert fws["pci_dss_4"]["points"][0]["counts"] == {
        "pass": 0,
        "fail": 4,
        "error": 1,
        "notapplicable": 0,
        "waived": 1,
        "notchecked": 0,
    }
    rules = doc["rules"]
    assert rates(rules["KERN-001"]) == [(0, 2), (2, 2), (1, 2)]
    assert rates(rules["KERN-014"]) == [(0, 2), (1, 2), (1, 1)]
    assert rates(rules["IDN-011"]) == [(0, 2), (1, 2), (1, 2)]
    assert [p["started"] for p in rules["KERN-001"]["points"]] == list(STARTED)


def test_filters_narrow_rates_and_findings(db: Path) -> None:
    doc = show_json(db, "--host", "node1", "--framework", "pci_dss_4")
    assert list(doc["frameworks"]) == ["pci_dss_4"]
    assert rates(doc["frameworks"]["pci_dss_4"]) == [(0, 3), (3, 3), (1, 2)]
    assert sorted(doc["rules"]) == ["IDN-011", "KERN-001", "KERN-014"]  # NET-003 is soc2 only
    assert {(f["host"], f["rule"]) for f in doc["findings"]} == {
        ("node1", "KERN-001"),
        ("node1", "KERN-014"),
        ("node1", "IDN-011"),
    }
    only = show_json(db, "--rule", "KERN-001")
    assert list(only["rules"]) == ["KERN-001"]
    assert rates(only["frameworks"]["soc2"]) == [(0, 2), (2, 2), (1, 2)]
    assert show_json(db, "--profile", "other")["audits"] == []


def test_an_audit_with_nothing_evaluated_has_no_rate(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    audit = make_audit(STARTED[0], {("node1", "KERN-001"): "notapplicable"})
    record(db, write(audit, tmp_path / "r.json"))
    point = show_json(db)["frameworks"]["pci_dss_4"]["points"][0]
    assert (point["rate"], point["passed"], point["evaluated"]) == (None, 0, 0)


# -- expiring waivers --------------------------------------------------------------------------


def test_waivers_about_to_expire(db: Path) -> None:
    # the newest audit is 2025-03-01; the waiver expires 2025-03-20
    doc = show_json(db, "--as-of", "newest")
    ew = doc["expiring_waivers"]
    assert (ew["as_of"], ew["days"]) == ("2025-03-01", 30)
    assert [(w["host"], w["rule"], w["expires"], w["days_left"]) for w in ew["waivers"]] == [
        ("node2", "IDN-011", WAIVER_EXPIRES, 19)
    ]
    assert (
        show_json(db, "--as-of", "newest", "--expiring-days", "18")["expiring_waivers"]["waivers"]
        == []
    )
    late = show_json(db, "--as-of", "2025-04-01", "--expiring-days", "0")["expiring_waivers"]
    assert [w["days_left"] for w in late["waivers"]] == [-12]  # expired since the last audit
    text = run("history", "show", "--db", str(db), "--as-of", "2025-03-10").output
    assert "node2 IDN-011: expires 2025-03-20 (in 10 days)" in text


def test_only_the_latest_result_of_a_cell_counts_for_expiry(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    waived = make_audit(STARTED[0], {("node2", "IDN-011"): "waived"})
    fixed = make_audit(STARTED[1], {("node2", "IDN-011"): "pass"})
    for i, audit in enumerate((waived, fixed)):
        record(db, write(audit, tmp_path / f"{i}.json"))
    assert show_json(db, "--as-of", "2025-03-01")["expiring_waivers"]["waivers"] == []


def test_expiring_days_default_is_counted_from_today(db: Path) -> None:
    doc = show_json(db)
    import datetime as dt

    assert doc["expiring_waivers"]["as_of"] == dt.date.today().isoformat()
    assert doc["expiring_waivers"]["days"] == 30


# -- import ------------------------------------------------------------------------------------


def test_duplicate_import_is_a_no_op(tmp_path: Path, results_files: list[Path]) -> None:
    db = tmp_path / "deep" / "dir" / "history.sqlite"
    first = run("history", "import", "--db", str(db), *map(str, results_files))
    assert first.exit_code == 0, first.output
    assert first.output.count("recorded as audit") == 3
    copy = tmp_path / "copy.json"
    copy.write_bytes(results_files[1].read_bytes())
    again = run("history", "import", "--db", str(db), str(results_files[0]), str(copy))
    assert again.exit_code == 0, again.output
    assert f"{results_files[0]}: already recorded as audit 1 (same SHA-256)" in again.output
    assert f"{copy}: already recorded as audit 2" in again.output
    assert "nothing changed" in again.output
    with History.open(db) as h:
        assert len(h.audits()) == 3
        assert h.conn.execute("SELECT count(*) FROM results").fetchone()[0] == 24


def test_the_db_defaults_to_the_environment(tmp_path: Path, results_files: list[Path]) -> None:
    db = tmp_path / "env" / "h.sqlite"
    res = run("history", "import", str(results_files[0]), env={"M7GUARD_HISTORY_DB": str(db)})
    assert res.exit_code == 0, res.output
    assert db.is_file() and f"history: {db}" in res.output


def test_a_bad_results_file_records_nothing(tmp_path: Path, results_files: list[Path]) -> None:
    db = tmp_path / "h.sqlite"
    bad = tmp_path / "bad.json"
    data = json.loads(results_files[0].read_text())
    data["results"][0]["state"] = "maybe"
    bad.write_text(json.dumps(data))
    res = run("history", "import", "--db", str(db), str(bad), str(results_files[1]))
    assert res.exit_code == 1
    assert f"{bad}: results/0/state" in res.output
    assert f"{results_files[1]}: recorded as audit 1" in res.output
    with History.open(db) as h:
        assert [a.started for a in h.audits()] == [STARTED[1]]


def test_schema_is_versioned_and_complete(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            "1",
        )
        rows = conn.execute(
            "SELECT profile, tool_version, catalog_version, catalog_digest, "
            "length(source_sha256) FROM audits ORDER BY started"
        ).fetchall()
        assert [r[:3] for r in rows] == [("pci_dss", "0.1.0", "0.1.0")] * 2 + [
            ("pci_dss", "0.1.0", "0.2.0")
        ]
        # older results have no catalog object: a digest of their rule and framework snapshots
        assert rows[0][3] == rows[1][3] and re.fullmatch("snapshot-sha256:[0-9a-f]{64}", rows[0][3])
        assert rows[2][3] == CATALOG["digest"] and {r[4] for r in rows} == {64}
        waived = conn.execute(
            "SELECT state, evaluated_state, severity, waiver_expires FROM results "
            "WHERE host='node2' AND rule='IDN-011'"
        ).fetchall()
        assert waived == [("waived", "fail", "high", WAIVER_EXPIRES)] * 3
        controls = conn.execute(
            "SELECT DISTINCT framework, control FROM controls WHERE rule='KERN-001' ORDER BY 1"
        ).fetchall()
        assert controls == [("pci_dss_4", "2.2.6"), ("soc2", "CC7.1")]
    finally:
        conn.close()


# -- clear errors ------------------------------------------------------------------------------


def test_schema_version_mismatch_is_a_clear_error(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    res = run("history", "show", "--db", str(db))
    assert res.exit_code == 1
    assert f"history database {db} has schema_version '99'" in res.output
    assert "reads schema_version '1'" in res.output
    assert "Traceback" not in res.output
    imp = run("history", "import", "--db", str(db), str(db))
    assert imp.exit_code == 1 and "schema_version '99'" in imp.output


def test_unusable_db_paths_are_clear_errors(tmp_path: Path, results_files: list[Path]) -> None:
    results = str(results_files[0])
    folder = tmp_path / "folder"
    folder.mkdir()
    res = run("history", "import", "--db", str(folder), results)
    assert res.exit_code == 1 and f"history database {folder} is a directory" in res.output

    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("history", "import", "--db", str(blocker / "h.sqlite"), results)
    assert res.exit_code == 1
    assert f"cannot create the directory of history database {blocker / 'h.sqlite'}" in res.output

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all, just some bytes" * 100)
    res = run("history", "show", "--db", str(garbage))
    assert (
        res.exit_code == 1 and f"history database {garbage}: file is not a database" in res.output
    )

    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    res = run("history", "show", "--db", str(other))
    assert res.exit_code == 1 and "not an m7guard history (no meta table)" in res.output

    missing = tmp_path / "missing.sqlite"
    res = run("history", "show", "--db", str(missing))
    assert res.exit_code == 1 and f"no history database at {missing}" in res.output
    assert not missing.exists()  # show never creates a database


def test_unreadable_db_file_is_a_clear_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # permission bits do not stop root, so an unreadable file is simulated at os.access
    import m7guard.history.store as store

    real = store.os.access
    monkeypatch.setattr(
        store.os, "access", lambda path, mode, **kw: Path(path) != db and real(path, mode, **kw)
    )
    with (
        pytest.raises(HistoryError, match="is not readable \\(permission denied\\)"),
        History.open(db),
    ):
        pass
    res = run("history", "show", "--db", str(db))
    assert res.exit_code != 0
    assert f"{db}' is not readable" in res.output  # click's check of --db
    assert "Traceback" not in res.output


# -- output ------------------------------------------------------------------------------------


def test_json_output_shape(db: Path) -> None:
    doc = show_json(db)
    assert set(doc) == {
        "schema_version",
        "database",
        "filters",
        "audits",
        "frameworks",
        "rules",
        "findings",
        "expiring_waivers",
    }
    assert doc["schema_version"] == "1" and doc["database"] == str(db)
    assert doc["filters"] == {"framework": None, "rule": None, "host": None, "profile": None}
    assert [a["started"] for a in doc["audits"]] == list(STARTED)
    assert set(doc["audits"][0]) == {
        "id",
        "started",
        "finished",
        "profile",
        "profile_title",
        "inventory",
        "tool_version",
        "catalog_version",
        "catalog_digest",
        "source_sha256",
        "source",
    }
    point = doc["frameworks"]["soc2"]["points"][0]
    assert set(point) == {"audit", "started", "rate", "passed", "evaluated", "counts"}
    assert doc["frameworks"]["soc2"]["title"] == "SOC 2 (2017 TSC)"
    assert doc["rules"]["KERN-001"]["severity"] == "high"
    # findings: only the pairs that failed at least once, by rule then host
    assert [(f["host"], f["rule"]) for f in doc["findings"]] == [
        ("node1", "IDN-011"),
        ("node1", "KERN-001"),
        ("node2", "KERN-001"),
        ("node1", "KERN-014"),
        ("node2", "KERN-014"),
        ("node1", "NET-003"),
    ]
    kern = doc["findings"][1]
    assert set(kern) == {"host", "rule", "current", "open", "first_failed", "timeline", "episodes"}
    assert (kern["current"], kern["open"], kern["first_failed"]) == ("reopened", True, STARTED[0])
    assert [e["status"] for e in kern["timeline"]] == ["new", "fixed", "reopened"]
    assert set(kern["timeline"][0]) == {"audit_id", "started", "state", "status"}
    assert kern["episodes"][0] == {
        "opened_audit": doc["audits"][0]["id"],
        "opened": STARTED[0],
        "reopened": False,
        "fixed_audit": doc["audits"][1]["id"],
        "fixed": STARTED[1],
    }


def test_text_output(db: Path) -> None:
    before, after, mutation = audit_ids(db)
    res = run("history", "show", "--db", str(db))
    assert res.exit_code == 0, res.output
    out = res.output
    assert "3 audit(s)" in out
    assert f"node1 KERN-001: OPEN: new #{before} -> fixed #{after} -> reopened #{mutation}" in out
    assert f"node2 KERN-014: closed: new #{before} (error) -> persisting #{after}" in out
    pci = next(line for line in out.splitlines() if line.strip().startswith("pci_dss_4"))
    assert pci.split()[1:] == ["0%", "(0/6)", "67%", "(4/6)", "60%", "(3/5)"]


def test_an_empty_history_shows_no_audit(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with History.open(db, create=True):
        pass
    res = run("history", "show", "--db", str(db))
    assert res.exit_code == 0 and "0 audit(s)" in res.output
    assert show_json(db)["findings"] == []


def test_audits_of_another_profile_are_kept_apart(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    audits = scenario_audits()
    other = make_audit(STARTED[1], {("node1", "KERN-001"): "pass"}, profile="baseline")
    for i, a in enumerate([audits[0], other, audits[2]]):
        record(db, write(a, tmp_path / f"{i}.json"))
    assert lifecycle(db, "node1", "KERN-001").statuses == ["new", "fixed", "reopened"]
    assert lifecycle(db, "node1", "KERN-001", profile="pci_dss").statuses == ["new", "persisting"]
