"""Rules outside the compliance frameworks: `category: performance` with no references."""

from __future__ import annotations

from pathlib import Path

from m7guard.catalog.loader import load_catalog


def _validate(run_cli, policies: Path) -> str:
    result = run_cli("catalog", "validate", "--policies", str(policies))
    return result.output


def test_perf_rules_load_without_references(shipped_policies: Path) -> None:
    catalog = load_catalog(shipped_policies)
    perf = [r for r in catalog.rules.values() if r.area == "performance"]
    assert len(perf) == 12 and all(r.id.startswith("PERF-") for r in perf)
    assert all(dict(r.references) == {} for r in perf)
    assert all(r.remediation_role == "kernel_tuning" for r in perf)
    baseline, pci = catalog.profile("baseline"), catalog.profile("pci_dss")
    tuning = catalog.profile("tuning")
    assert all(baseline.selects(r) and tuning.selects(r) and not pci.selects(r) for r in perf)
    coverage = catalog.coverage("pci_dss_4", catalog.rules.values())
    assert not any(rule.startswith("PERF-") for c in coverage for rule in c.rules)


def test_a_performance_rule_must_not_reference_a_framework(run_cli, policies: Path,
                                                           edit_yaml) -> None:
    edit_yaml(policies / "rules/performance/PERF-001.yml",
              lambda d: d.update(references={"soc2": ["CC7.1"]}))
    out = _validate(run_cli, policies)
    assert ("policies/rules/performance/PERF-001.yml: references: {'soc2': ['CC7.1']} is "
            "expected to be empty") in out


def test_a_compliance_rule_still_needs_a_reference(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(policies / "rules/kernel/KERN-003.yml", lambda d: d.update(references={}))
    out = _validate(run_cli, policies)
    assert "policies/rules/kernel/KERN-003.yml: references: {} should be non-empty" in out
    edit_yaml(policies / "rules/kernel/KERN-003.yml",
              lambda d: d.update(references={}, category="tuning"))
    assert "category: 'tuning' is not one of: compliance, performance" in _validate(run_cli,
                                                                                    policies)
