"""Results for the history tests (tests/unit/history): three synthetic audits of two nodes,
built like tests/unit/reports/conftest.py builds results: before hardening, after it, and
after a mutation that breaks KERN-001 on node1 again.

cell              before   after           mutation
node1 KERN-001    fail     pass            fail           new, fixed, reopened
node2 KERN-001    fail     pass            pass           new, fixed, pass
node1 KERN-014    fail     pass            notapplicable  new, fixed, notapplicable
node2 KERN-014    error    fail            pass           new, persisting, fixed
node1 NET-003     fail     pass            pass           new, fixed, pass
node2 NET-003     pass     pass            pass           pass, pass, pass
node1 IDN-011     fail     pass            pass           new, fixed, pass
node2 IDN-011     waived   waived          waived         (the check found fail each time)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from m7guard.results import SCHEMA_VERSION, Results

FRAMEWORKS = {
    "pci_dss_4": {
        "title": "PCI DSS v4.0.1",
        "version": "4.0.1",
        "requirements": [
            {"id": "2.2.1", "title": "Standards", "evidence": ""},
            {"id": "2.2.6", "title": "Parameters", "evidence": ""},
            {"id": "8.4.2", "title": "MFA", "evidence": ""},
        ],
    },
    "soc2": {
        "title": "SOC 2 (2017 TSC)",
        "version": "2017",
        "requirements": [
            {"id": "CC6.1", "title": "Logical access", "evidence": ""},
            {"id": "CC6.6", "title": "Boundaries", "evidence": ""},
            {"id": "CC7.1", "title": "Detection", "evidence": ""},
        ],
    },
}

RULES = {
    "KERN-001": ("Kernel pointers are hidden", "high", {"pci_dss_4": ["2.2.6"], "soc2": ["CC7.1"]}),
    "KERN-014": ("Martians are logged", "low", {"pci_dss_4": ["2.2.1"]}),
    "NET-003": ("Only the zone's ports are open", "medium", {"soc2": ["CC6.6"]}),
    "IDN-011": ("Kerberos MFA", "high", {"pci_dss_4": ["8.4.2"], "soc2": ["CC6.1"]}),
}

WAIVER_EXPIRES = "2025-03-20"

# (host, rule) -> state per audit; "waived" results found "fail"
SCENARIO: dict[tuple[str, str], tuple[str, str, str]] = {
    ("node1", "KERN-001"): ("fail", "pass", "fail"),
    ("node2", "KERN-001"): ("fail", "pass", "pass"),
    ("node1", "KERN-014"): ("fail", "pass", "notapplicable"),
    ("node2", "KERN-014"): ("error", "fail", "pass"),
    ("node1", "NET-003"): ("fail", "pass", "pass"),
    ("node2", "NET-003"): ("pass", "pass", "pass"),
    ("node1", "IDN-011"): ("fail", "pass", "pass"),
    ("node2", "IDN-011"): ("waived", "waived", "waived"),
}
STARTED = ("2025-01-01T10:00:00.000Z", "2025-02-01T10:00:00.000Z", "2025-03-01T10:00:00.000Z")


def rule_doc(rule_id: str) -> dict[str, Any]:
    title, severity, refs = RULES[rule_id]
    areas = {"KERN": "kernel", "NET": "zero_trust_network", "IDN": "kerberos_mfa"}
    area = areas[rule_id.split("-")[0]]
    return {
        "title": title,
        "severity": severity,
        "area": area,
        "description": title,
        "rationale": "",
        "references": copy.deepcopy(refs),
        "remediation": {
            "role": "kernel_tuning",
            "tags": [rule_id],
            "command": f"ansible-playbook playbooks/site.yml --tags {rule_id}",
        },
        "check": f"m7guard/checks/{area}.py::test_{rule_id.lower().replace('-', '_')}",
        "file": f"policies/rules/{area}/{rule_id}.yml",
        "parameters": {},
    }


def make_audit(
    started: str,
    states: dict[tuple[str, str], str],
    *,
    profile: str = "pci_dss",
    waiver_expires: str = WAIVER_EXPIRES,
    catalog: dict[str, str] | None = None,
) -> Results:
    waiver = {
        "rule": "IDN-011",
        "hosts": "node2",
        "justification": "Automation account",
        "expires": waiver_expires,
        "approver": "ciso",
        "ticket": "",
        "source": "waivers.yml",
    }
    results = []
    for (host, rule), state in sorted(states.items()):
        r: dict[str, Any] = {
            "host": host,
            "rule": rule,
            "state": state,
            "message": f"{rule} on {host}: {state}",
            "evidence": {},
            "duration": 0.01,
            "waiver": None,
        }
        if state == "waived":
            r |= {"evaluated_state": "fail", "waiver": waiver}
        results.append(r)
    rules = sorted({rule for _, rule in states})
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "m7guard", "version": "0.1.0"},
        "started": started,
        "finished": started.replace("10:00:00", "10:00:09"),
        "inventory": "inventories/lab",
        "limit": "m7_nodes",
        "profile": {"id": profile, "title": "PCI DSS", "frameworks": ["pci_dss_4", "soc2"]},
        "hosts": [
            {"name": h, "reachable": True, "error": None, "groups": ["m7_nodes"], "facts": {}}
            for h in sorted({h for h, _ in states})
        ],
        "rules": {rid: rule_doc(rid) for rid in rules},
        "frameworks": copy.deepcopy(FRAMEWORKS),
        "results": results,
        "waivers": (
            [waiver | {"status": "applied", "hosts_matched": ["node2"]}]
            if "waived" in states.values()
            else []
        ),
        "warnings": [],
    }
    if catalog is not None:
        data["catalog"] = catalog
    return Results.validated(data)


CATALOG = {"version": "0.2.0", "digest": "sha256:" + "ab" * 32}


def scenario_audits() -> list[Results]:
    """The three audits; the last carries the catalog's version and digest (newer results)."""
    return [
        make_audit(
            STARTED[i],
            {cell: states[i] for cell, states in SCENARIO.items()},
            catalog=CATALOG if i == 2 else None,
        )
        for i in range(3)
    ]


def write(results: Results, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.data, indent=2) + "\n", encoding="utf-8")
    return path
