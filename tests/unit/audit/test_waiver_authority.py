"""Waivers are the controller's (issue 13, class 4): a host cannot waive a rule for itself,
a waiver needs an approver and an expiry the catalog bounds, and a waived rule never counts
as satisfied in the framework totals."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml

from m7guard.audit.runner import AuditOptions, _Events, assemble
from m7guard.catalog import CatalogError, load_catalog
from m7guard.catalog.waivers import load_waivers
from m7guard.results import HostEvent, ResultEvent
from m7guard.validate import validate

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
TODAY = dt.date(2026, 3, 1)
CLAIM = {
    "waivers": [
        {
            "rule": "KERN-005",
            "justification": "the node says this rule does not matter here",
            "expires": "2099-12-31",
            "approver": "node-itself",
        }
    ]
}


def _events(state: str = "fail") -> _Events:
    return _Events(
        collected={"node1": ["KERN-005", "KERN-008"]},
        hosts={
            "node1": HostEvent(
                host="node1", error=None, groups=["all"], waivers_raw=json.dumps(CLAIM)
            )
        },
        results=[
            ResultEvent(
                host="node1",
                rule=rid,
                state=state,
                message="kernel value is 0",
                evidence={"running": "0"},
                duration=0.01,
            )
            for rid in ("KERN-005", "KERN-008")
        ],
    )


def _assemble(waivers_file: Path | None = None, state: str = "fail"):
    catalog = load_catalog(POLICIES)
    opts = AuditOptions(inventory=Path("hosts.yml"), profile="kernel", today=TODAY)
    waivers = load_waivers(waivers_file, catalog, TODAY) if waivers_file else []
    return assemble(
        opts,
        catalog,
        catalog.profile("kernel"),
        waivers,
        _events(state),
        started="2026-03-01T00:00:00Z",
        finished="2026-03-01T00:00:01Z",
    )


def _waivers_file(tmp_path: Path, rule: str, expires: dt.date, **extra: str) -> Path:
    entry = {
        "rule": rule,
        "hosts": "node*",
        "approver": "ciso@example.com",
        "justification": "accepted on the controller with a compensating control",
        "expires": expires.isoformat(),
        **extra,
    }
    path = tmp_path / "waivers.yml"
    path.write_text("---\n" + yaml.safe_dump({"waivers": [entry]}))
    return path


def test_a_host_cannot_waive_a_rule_for_itself() -> None:
    results = _assemble()
    kern5 = next(r for r in results.results if r["rule"] == "KERN-005")
    assert kern5["state"] == "fail" and kern5["waiver"] is None
    # the claim is kept as evidence, and said
    assert kern5["evidence"]["host_claimed_waiver"]["approver"] == "node-itself"
    assert kern5["evidence"]["running"] == "0"
    assert any(
        "node1 claims a waiver of KERN-005" in w and "cannot waive its own" in w
        for w in results.data["warnings"]
    )
    assert results.data["waivers"] == []
    assert results.exit_code("low") == 2


def test_the_controller_waivers_file_still_waives(tmp_path: Path) -> None:
    path = _waivers_file(tmp_path, "KERN-005", TODAY + dt.timedelta(days=30))
    results = _assemble(path)
    kern5 = next(r for r in results.results if r["rule"] == "KERN-005")
    assert kern5["state"] == "waived" and kern5["evaluated_state"] == "fail"
    assert kern5["waiver"]["source"] == str(path)
    assert "host_claimed_waiver" in kern5["evidence"]  # the node's record, cross-checked
    assert not any("claims a waiver" in w for w in results.data["warnings"])


def test_a_waived_rule_never_counts_as_satisfied(tmp_path: Path) -> None:
    # KERN-005 and KERN-008 both map to PCI 2.2.1/2.2.6: pass one, waive the other
    path = _waivers_file(tmp_path, "KERN-005", TODAY + dt.timedelta(days=30))
    results = _assemble(path, state="pass")
    kern5 = next(r for r in results.results if r["rule"] == "KERN-005")
    assert kern5["state"] == "waived" and kern5["evaluated_state"] == "pass"
    statuses = {s.id: s.status for s in results.requirement_statuses("pci_dss_4")}
    shared = set(results.data["rules"]["KERN-005"]["references"]["pci_dss_4"])
    assert shared and all(statuses[req] == "waived" for req in shared), statuses
    summary = results.framework_summary("pci_dss_4")
    assert summary["waived"] == len(shared)
    assert summary["satisfied"] == sum(s == "satisfied" for s in statuses.values())
    assert summary["share_satisfied"] < 1.0


@pytest.mark.parametrize(("rule", "limit"), [("KERN-005", 180), ("KERN-014", 365)])
def test_waiver_expiry_is_bounded_by_the_catalog(tmp_path: Path, rule: str, limit: int) -> None:
    catalog = load_catalog(POLICIES)
    ok = _waivers_file(tmp_path, rule, TODAY + dt.timedelta(days=limit))
    assert load_waivers(ok, catalog, TODAY)[0].rule == rule
    too_long = _waivers_file(tmp_path, rule, TODAY + dt.timedelta(days=limit + 1))
    with pytest.raises(CatalogError, match=rf"more than {limit} days away.*waiver_policy.yml"):
        load_waivers(too_long, catalog, TODAY)


def test_a_waiver_without_approver_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(
        "---\nwaivers:\n  - {rule: KERN-005, hosts: '*', expires: 2026-03-02,\n"
        "     justification: accepted for a good reason}\n"
    )
    with pytest.raises(CatalogError, match=r"waivers\[0\]\.approver: is required"):
        load_waivers(path, load_catalog(POLICIES), TODAY)


def test_catalog_needs_a_waiver_policy(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "waiver_policy.yml").write_text("---\nmax_days: {high: 90}\n")
    _, problems = validate(policies)
    assert any("waiver_policy.yml: max_days" in str(p) for p in problems), problems
    (policies / "waiver_policy.yml").unlink()
    _, problems = validate(policies)
    assert any("waiver_policy.yml" in str(p) and "missing" in str(p) for p in problems)
