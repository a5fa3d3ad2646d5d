"""AUD-008's evidence of what earlier baselines accepted (audit_logging keeps each report in
/var/lib/aide/accepted-<time>.txt): shown to the auditor, never deciding the verdict."""

from __future__ import annotations

from typing import Any

from m7guard.checks import audit_logging

PARAMS = {"config": "/etc/aide/aide.conf",
          "timers": ["audit-logging-aide-check.timer", "dailyaidecheck.timer"]}
CONF = "database_in=file:/var/lib/aide/aide.db\ndatabase_out=file:/var/lib/aide/aide.db.new\n"
TIMER = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\nMainPID=0\n"
CLEAN = "AIDE found NO differences between database and filesystem. Looks okay!!\n"


def _report(path: str) -> str:
    return ("AIDE found differences between database and filesystem!!\n\nSummary:\n"
            "  Total number of entries:\t1244\n  Added entries:\t\t1\n"
            "  Removed entries:\t\t0\n  Changed entries:\t\t0\n\n"
            f"Added entries:\n\nf++++++++++++++++: {path}\n")


def _host(fake_host: Any, fake_file: Any, out: Any, listing: Any,
          reports: dict[str, str | None], check: Any) -> Any:
    files = {"/etc/aide/aide.conf": fake_file(CONF), "/var/lib/aide/aide.db": fake_file("db")}
    files.update({f"/var/lib/aide/{n}": fake_file(t) for n, t in reports.items()})
    return fake_host(answers={"systemctl show": TIMER, "ls -1 /var/lib/aide": listing,
                              "aide --check": check}, files=files)


def test_the_evidence_lists_the_latest_accepted_reports(fake_host, fake_file, out, expect) -> None:
    names = [f"accepted-2026120{d}T000000Z.txt" for d in range(1, 8)]
    reports = {n: _report(f"/etc/probe-{i}") for i, n in enumerate(names)}
    listing = "\n".join(["aide.db", *reversed(names), "accepted-notes.txt"]) + "\n"
    host = _host(fake_host, fake_file, out, listing, reports,
                 out(0, CLEAN))
    evidence: dict[str, Any] = {}
    expect.run(audit_logging.test_aud_008, host, PARAMS, evidence)  # passes
    accepted = evidence["accepted_baselines"]
    assert accepted["count"] == 7
    assert [r["report"] for r in accepted["latest"]] == names[-audit_logging.ACCEPTED_SHOWN:]
    assert accepted["latest"][-1] == {"report": names[-1], "added": 1, "removed": 0,
                                      "changed": 0, "paths": ["/etc/probe-6"]}


def test_accepted_reports_do_not_make_a_changed_node_pass(fake_host, fake_file, out,
                                                          expect) -> None:
    name = "accepted-20261207T000000Z.txt"
    host = _host(fake_host, fake_file, out, name + "\n", {name: _report("/etc/probe")},
                 out(1, _report("/etc/later")))
    evidence: dict[str, Any] = {}
    message = expect.fail(audit_logging.test_aud_008, host, PARAMS, evidence)
    assert "/etc/later" in message
    assert evidence["accepted_baselines"]["latest"][0]["paths"] == ["/etc/probe"]


def test_none_accepted_and_an_unlistable_directory_are_told_apart(fake_host, fake_file, out,
                                                                  expect) -> None:
    none: dict[str, Any] = {}
    expect.run(audit_logging.test_aud_008,
               _host(fake_host, fake_file, out, "aide.db\n", {}, out(0, CLEAN)), PARAMS, none)
    assert none["accepted_baselines"] == {"count": 0, "latest": []}
    broken: dict[str, Any] = {}
    expect.run(audit_logging.test_aud_008,
               _host(fake_host, fake_file, out, out(2, "", "ls: Permission denied"), {},
                     out(0, CLEAN)), PARAMS, broken)
    assert "could not be listed (exit 2)" in broken["accepted_baselines"]["error"]
    unreadable: dict[str, Any] = {}
    name = "accepted-20261207T000000Z.txt"
    expect.run(audit_logging.test_aud_008,
               _host(fake_host, fake_file, out, name + "\n", {name: None}, out(0, CLEAN)),
               PARAMS, unreadable)
    assert unreadable["accepted_baselines"]["latest"] == [{"report": name, "error": "unreadable"}]


def test_without_a_baseline_the_check_fails_and_reads_no_reports(fake_host, fake_file, out,
                                                                  expect) -> None:
    name = "accepted-20261207T000000Z.txt"
    host = _host(fake_host, fake_file, out, name + "\n", {name: _report("/etc/probe")},
                 out(0, CLEAN))
    del host.files["/var/lib/aide/aide.db"]
    evidence: dict[str, Any] = {}
    assert "no AIDE baseline (/var/lib/aide/aide.db is missing)" in expect.fail(
        audit_logging.test_aud_008, host, PARAMS, evidence)
    assert "accepted_baselines" not in evidence
    assert not [c for c in host.commands if "aide --check" in c or "ls -1" in c]
