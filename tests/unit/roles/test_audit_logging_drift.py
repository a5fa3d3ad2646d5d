"""AUD-008's guard against a baseline that accepts changes m7guard did not make: where the
drift step runs (before any change, in the role and in site.yml) and what its refusal names.

The refusal on a node, and the acceptance with audit_logging_aide_update, are proven on
node2 (tests/integration/test_audit_logging.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
TASKS = ROOT / "roles" / "audit_logging" / "tasks"
ROLE = "m7guard.hardening.audit_logging"

# An `aide --check` report as AIDE 0.18 prints it (the summary lines, then the details).
REPORT = """\
Start timestamp: 2026-12-07 01:00:00 +0000 (AIDE 0.18.3)
AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t1244
  Added entries:\t\t1
  Removed entries:\t\t1
  Changed entries:\t\t2

---------------------------------------------------
Added entries:
---------------------------------------------------

f++++++++++++++++: /etc/m7guard-aide-probe

---------------------------------------------------
Removed entries:
---------------------------------------------------

f----------------: /usr/bin/old tool

---------------------------------------------------
Changed entries:
---------------------------------------------------

f > ...    .H..   : /etc/issue
d =.... mc.. .. : /etc/ssh

---------------------------------------------------
Detailed information about changes:
---------------------------------------------------

File: /etc/issue
  Size      : 27                               | 40
"""


def _load(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())


def _named(tasks: list[dict[str, Any]], fragment: str) -> dict[str, Any]:
    found = [t for t in tasks if fragment in t.get("name", "")]
    assert len(found) == 1, [t.get("name") for t in tasks]
    return found[0]


def _paths(report: str) -> list[str]:
    expr = _named(_load(TASKS / "drift.yml"), "Stop if")["vars"]["__paths"]
    drift = {"stdout_lines": report.splitlines()}
    templar = Templar(loader=DataLoader(), variables={"__audit_logging_aide_drift": drift})
    return list(templar.template(trust_as_template(expr)))


def test_the_refusal_names_every_changed_path_once() -> None:
    assert _paths(REPORT) == ["/etc/m7guard-aide-probe", "/usr/bin/old tool", "/etc/issue",
                              "/etc/ssh"]


def test_a_report_without_entries_names_nothing() -> None:
    assert _paths("AIDE found NO differences between database and filesystem. Looks okay!!\n") == []


def test_the_refusal_stops_unless_the_update_is_asked_for() -> None:
    stop = _named(_load(TASKS / "drift.yml"), "Stop if")
    assert "ansible.builtin.fail" in stop
    assert "not (audit_logging_aide_update | bool)" in stop["when"]
    assert "audit_logging_aide_update=true" in stop["ansible.builtin.fail"]["msg"]
    check = _named(_load(TASKS / "drift.yml"), "Compare")
    assert check["check_mode"] is False  # the comparison runs in --check too
    assert check["failed_when"] == "__audit_logging_aide_drift.rc >= 14"


def test_the_role_compares_before_its_first_change() -> None:
    steps = [t.get("ansible.builtin.include_tasks", {}).get("file")
             for t in _load(TASKS / "main.yml")]
    # the platform guard, the inputs and the node read, then the comparison, then changes
    assert steps[:4] == [None, "preflight.yml", "drift.yml", "packages.yml"]


def test_site_yml_compares_before_its_first_role_and_takes_the_baseline_last() -> None:
    plays = _load(ROOT / "playbooks" / "site.yml")
    includes = [(i, task["ansible.builtin.include_role"]) for i, play in enumerate(plays)
                for task in play.get("tasks", []) if "ansible.builtin.include_role" in task]
    drift = [i for i, inc in includes if inc.get("tasks_from") == "drift"]
    baseline = [i for i, inc in includes if inc.get("tasks_from") == "baseline"]
    first_role = min(i for i, play in enumerate(plays) if "ansible.builtin.import_playbook" in play)
    assert drift == [1] and first_role > 1, includes
    assert plays[1]["hosts"] == "m7_nodes"
    assert baseline == [len(plays) - 1]
    assert all(inc["name"] == ROLE for _i, inc in includes)


def test_the_baseline_step_refuses_without_the_comparison() -> None:
    guard = _load(TASKS / "baseline.yml")[0]
    assert guard["ansible.builtin.assert"]["that"] == (
        "(__audit_logging_aide_drift_checked | default(false)) or "
        "(audit_logging_aide_update | bool)")
    # the fact the guard reads is set by drift.yml alone
    setters = sorted(p.name for p in TASKS.glob("*.yml")
                     if "__audit_logging_aide_drift_checked: true" in p.read_text())
    assert setters == ["drift.yml"]
