from __future__ import annotations

import copy
from typing import Any

import pytest

from m7guard.results import SCHEMA_VERSION, Results

RULE = {
    "title": "Kernel pointers are hidden",
    "severity": "high",
    "area": "kernel",
    "description": "kernel.kptr_restrict is 1 or 2.",
    "rationale": "Addresses help exploits.",
    "references": {"pci_dss_4": ["2.2.6"], "soc2": ["CC7.1"]},
    "remediation": {
        "role": "kernel_tuning",
        "tags": ["KERN-001"],
        "command": "ansible-playbook playbooks/site.yml --tags KERN-001",
    },
    "check": "m7guard/checks/kernel.py::test_kern_001",
    "file": "policies/rules/kernel/KERN-001.yml",
    "parameters": {"allowed": [1, 2]},
}


def make_results(**changes: Any) -> Results:
    """A small results document: two hosts, two rules, one result of each state."""
    low = copy.deepcopy(RULE) | {
        "title": "Martians are logged",
        "severity": "low",
        "references": {"pci_dss_4": ["2.2.1"]},
        "file": "policies/rules/kernel/KERN-014.yml",
    }
    waiver = {
        "rule": "KERN-014",
        "hosts": "node2",
        "justification": "Edge node behind NAT",
        "expires": "2030-01-01",
        "approver": "ciso",
        "ticket": "",
        "source": "waivers.yml",
    }
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "m7guard", "version": "0.1.0"},
        "started": "2025-01-01T10:00:00.000Z",
        "finished": "2025-01-01T10:00:03.500Z",
        "inventory": "inventories/lab/hosts.yml",
        "limit": None,
        "profile": {"id": "baseline", "title": "m7guard baseline", "frameworks": ["pci_dss_4"]},
        "hosts": [
            {"name": "node1", "reachable": True, "error": None, "groups": ["all"], "facts": {}},
            {"name": "node2", "reachable": True, "error": None, "groups": ["all"], "facts": {}},
            {
                "name": "ghost",
                "reachable": False,
                "error": "host unreachable: refused",
                "groups": ["all"],
                "facts": {},
            },
        ],
        "rules": {"KERN-001": copy.deepcopy(RULE), "KERN-014": low},
        "frameworks": {
            "pci_dss_4": {
                "title": "PCI DSS v4.0.1",
                "version": "4.0.1",
                "requirements": [
                    {"id": "2.2.1", "title": "Standards", "evidence": ""},
                    {"id": "2.2.6", "title": "Parameters", "evidence": ""},
                    {"id": "8.4.2", "title": "MFA", "evidence": "MFA enrolment records"},
                ],
            }
        },
        "results": [
            {
                "host": "node1",
                "rule": "KERN-001",
                "state": "pass",
                "message": "",
                "evidence": {"sysctl": [{"key": "kernel.kptr_restrict", "running": "1"}]},
                "duration": 0.01,
                "waiver": None,
            },
            {
                "host": "node1",
                "rule": "KERN-014",
                "state": "notapplicable",
                "message": "condition",
                "evidence": {},
                "duration": 0.0,
                "waiver": None,
            },
            {
                "host": "node2",
                "rule": "KERN-001",
                "state": "fail",
                "message": "kernel.kptr_restrict is 0 <script>alert(1)</script>",
                "evidence": {"sysctl": [{"key": "kernel.kptr_restrict", "running": "0 & <b>"}]},
                "duration": 0.02,
                "waiver": None,
            },
            {
                "host": "node2",
                "rule": "KERN-014",
                "state": "waived",
                "evaluated_state": "fail",
                "message": "log_martians is 0",
                "evidence": {},
                "duration": 0.01,
                "waiver": waiver,
            },
            {
                "host": "ghost",
                "rule": "KERN-001",
                "state": "error",
                "message": "host unreachable: refused",
                "evidence": {},
                "duration": 0.0,
                "waiver": None,
            },
            {
                "host": "ghost",
                "rule": "KERN-014",
                "state": "error",
                "message": "host unreachable: refused",
                "evidence": {},
                "duration": 0.0,
                "waiver": None,
            },
        ],
        "waivers": [waiver | {"status": "applied", "hosts_matched": ["node2"]}],
        "warnings": ["ghost: host unreachable: refused; every rule on it is reported as error"],
    }
    data.update(changes)
    return Results.validated(data)


@pytest.fixture
def results() -> Results:
    return make_results()
