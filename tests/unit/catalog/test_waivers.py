"""Waivers: matching, expiry, files and host facts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from m7guard.catalog import CatalogError, load_catalog
from m7guard.catalog.waivers import Waiver, decide, host_waiver_claims, load_waivers

TODAY = dt.date(2025, 6, 1)


def _waiver(rule: str = "KERN-001", hosts: str = "node*", expires: str = "2025-06-01") -> Waiver:
    return Waiver(rule, hosts, "accepted for a reason", dt.date.fromisoformat(expires), "ciso", "f")


def test_active_waiver_covers_rule_and_host_pattern() -> None:
    w = _waiver()
    decision = decide([w], "KERN-001", "node2", TODAY)
    assert decision.active is w and decision.expired == ()
    assert decide([w], "KERN-002", "node2", TODAY).active is None
    assert decide([w], "KERN-001", "client1", TODAY).active is None


def test_waiver_is_valid_through_its_expiry_day_and_expired_after() -> None:
    w = _waiver(expires="2025-06-01")
    assert decide([w], "KERN-001", "node1", dt.date(2025, 6, 1)).active is w
    later = decide([w], "KERN-001", "node1", dt.date(2025, 6, 2))
    assert later.active is None
    assert later.expired == (w,)


def test_unexpired_waiver_wins_over_expired_one() -> None:
    old, new = _waiver(expires="2024-01-01"), _waiver(expires="2026-01-01")
    decision = decide([old, new], "KERN-001", "node1", TODAY)
    assert decision.active is new and decision.expired == (old,)


def test_example_waivers_file_loads(shipped_policies: Path) -> None:
    catalog = load_catalog(shipped_policies)
    waivers = load_waivers(shipped_policies / "waivers.example.yml", catalog)
    assert [w.rule for w in waivers] == ["KERN-008", "KERN-014"]
    assert waivers[0].expires == dt.date(2026, 6, 30)
    assert waivers[0].source == "policies/waivers.example.yml"
    assert waivers[0].ticket == "RISK-311"


def test_waivers_file_without_expiry_is_rejected(tmp_path: Path, shipped_policies: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(
        "---\nwaivers:\n  - rule: KERN-001\n    hosts: '*'\n"
        "    justification: long enough reason\n    approver: ciso\n"
    )
    with pytest.raises(CatalogError) as err:
        load_waivers(path, load_catalog(shipped_policies))
    assert "waivers[0].expires: is required" in str(err.value)


def test_missing_waivers_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="waivers file not found"):
        load_waivers(tmp_path / "nope.yml")


def test_host_waiver_claims_apply_to_their_own_host_only(shipped_policies: Path) -> None:
    catalog = load_catalog(shipped_policies)
    raw = json.dumps(
        {
            "waivers": [
                {
                    "rule": "KERN-005",
                    "justification": "debugger needed by the automation account",
                    "expires": "2030-01-01",
                    "approver": "ciso",
                },
                {
                    "rule": "KERN-006",
                    "hosts": "client*",
                    "justification": "tries to waive for other hosts",
                    "expires": "2030-01-01",
                    "approver": "ciso",
                },
                {"rule": "KERN-007", "expires": "2030-01-01", "approver": "ciso"},
                {
                    "rule": "NOPE-001",
                    "justification": "unknown rule id here",
                    "expires": "2030-01-01",
                    "approver": "x1",
                },
            ]
        }
    )
    waivers, warnings = host_waiver_claims("node1", raw, catalog)
    assert [(w.rule, w.hosts) for w in waivers] == [("KERN-005", "node1")]
    assert waivers[0].source == "node1:/etc/ansible/facts.d/m7guard_waivers.fact"
    text = "\n".join(warnings)
    assert "waiver 1 ignored: hosts: a host fact may only waive its own host" in text
    assert "waiver 2 ignored: waivers[2].justification: is required" in text
    assert "waiver 3 ignored: waivers[3].rule: no rule NOPE-001" in text


def test_host_fact_that_is_not_json_is_a_warning(shipped_policies: Path) -> None:
    waivers, warnings = host_waiver_claims("n", "{oops", load_catalog(shipped_policies))
    assert waivers == [] and "not valid JSON" in warnings[0]
    assert host_waiver_claims("n", "", load_catalog(shipped_policies)) == ([], [])
