"""catalog list / show / coverage, profiles and parameters."""

from __future__ import annotations

import json
from pathlib import Path

from m7guard.catalog import load_catalog


def test_list_json_has_every_rule_with_its_frameworks(run_cli, shipped_policies: Path) -> None:
    result = run_cli(
        "catalog",
        "list",
        "--policies",
        str(shipped_policies),
        "--area",
        "kernel",
        "--format",
        "json",
    )
    assert result.exit_code == 0
    rules = json.loads(result.output)
    assert [r["id"] for r in rules] == [f"KERN-{n:03d}" for n in range(1, 17)]
    kern3 = next(r for r in rules if r["id"] == "KERN-003")
    assert kern3["severity"] == "high"
    assert kern3["frameworks"] == ["hipaa", "nist_800_53", "pci_dss_4", "soc2"]


def test_list_by_profile_follows_the_selectors(run_cli, shipped_policies: Path) -> None:
    result = run_cli(
        "catalog",
        "list",
        "--policies",
        str(shipped_policies),
        "--profile",
        "hipaa",
        "--format",
        "json",
    )
    ids = {r["id"] for r in json.loads(result.output)}
    catalog = load_catalog(shipped_policies)
    expected = {r.id for r in catalog.rules.values() if "hipaa" in r.references}
    assert ids == expected
    assert "KERN-015" not in ids  # SYN cookies carry no HIPAA reference


def test_table_output_names_rules(run_cli, shipped_policies: Path) -> None:
    result = run_cli("catalog", "list", "--policies", str(shipped_policies), "--area", "kernel")
    assert result.exit_code == 0
    assert "KERN-016" in result.output and "16 rules" in result.output


def test_show_rule(run_cli, shipped_policies: Path) -> None:
    result = run_cli("catalog", "show", "--policies", str(shipped_policies), "kern-009")
    assert result.exit_code == 0
    assert "KERN-009" in result.output
    assert "pci_dss_4: 1.4.3, 2.2.1, 2.2.6" in result.output
    assert "ansible-playbook playbooks/site.yml --tags KERN-009" in result.output
    data = json.loads(
        run_cli(
            "catalog", "show", "--policies", str(shipped_policies), "KERN-001", "--format", "json"
        ).output
    )
    assert data["check"] == "m7guard/checks/kernel.py::test_kern_001"
    assert data["applies_to"]["conditions"] == ["not_container"]
    assert data["file"] == "policies/rules/kernel/KERN-001.yml"


def test_show_unknown_rule_is_an_error(shipped_policies: Path) -> None:
    from click.testing import CliRunner

    from m7guard.cli import cli

    result = CliRunner().invoke(
        cli, ["catalog", "show", "--policies", str(shipped_policies), "X-1"]
    )
    assert result.exit_code != 0
    assert "unknown rule 'X-1'" in str(result.exception)


def test_coverage_is_derived_from_rule_references(run_cli, policies: Path, edit_yaml) -> None:
    def coverage() -> dict:
        out = run_cli(
            "catalog",
            "coverage",
            "--policies",
            str(policies),
            "--framework",
            "pci_dss_4",
            "--format",
            "json",
        ).output
        return {r["id"]: r for r in json.loads(out)["requirements"]}

    before = coverage()
    assert before["2.2.6"]["status"] == "automated"
    assert "KERN-001" in before["2.2.6"]["rules"]
    manual = [r for r in before.values() if r["status"] == "manual"]
    assert manual and all(r["rules"] == [] for r in manual)
    target = manual[0]["id"]
    edit_yaml(
        policies / "rules/kernel/KERN-016.yml",
        lambda d: d["references"]["pci_dss_4"].append(target),
    )
    after = coverage()
    assert after[target]["status"] == "automated"
    assert after[target]["rules"] == ["KERN-016"]
    assert {k: v for k, v in after.items() if k != target} == {
        k: v for k, v in before.items() if k != target
    }


def test_coverage_markdown_lists_manual_requirements(run_cli, shipped_policies: Path) -> None:
    out = run_cli(
        "catalog",
        "coverage",
        "--policies",
        str(shipped_policies),
        "--framework",
        "hipaa",
        "--format",
        "markdown",
    ).output
    assert "| 164.312(d) |" in out and "manual (evidence needed)" in out
    assert "| 164.308(a)(1)(ii)(D) |" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("| 164.308(a)(1)(ii)(D) |"))
    assert "automated" in line and "KERN-003" in line


def test_profile_parameters_override_defaults(shipped_policies: Path) -> None:
    catalog = load_catalog(shipped_policies)
    rule = catalog.rule("KERN-001")
    assert catalog.parameters_for(rule, None) == {"allowed": [1, 2]}
    assert catalog.parameters_for(rule, catalog.profile("baseline")) == {"allowed": [1, 2]}
    assert catalog.parameters_for(rule, catalog.profile("pci_dss")) == {"allowed": [2]}


def test_new_area_joins_profiles_without_editing_them(policies: Path, edit_yaml) -> None:
    (policies / "rules/demo").mkdir()
    src = (policies / "rules/kernel/KERN-008.yml").read_text()
    (policies / "rules/demo/DEMO-001.yml").write_text(
        src.replace("KERN-008", "DEMO-001").replace(
            "kernel.py::test_kern_008", "demo.py::test_demo_001"
        )
    )
    catalog = load_catalog(policies)
    assert catalog.rule("DEMO-001").area == "demo"
    for profile in ("baseline", "pci_dss", "soc2"):
        assert "DEMO-001" in {r.id for r in catalog.rules_for(catalog.profile(profile))}
    assert "DEMO-001" not in {r.id for r in catalog.rules_for(catalog.profile("kernel"))}


def test_show_says_a_cluster_rule_is_one(run_cli, shipped_policies: Path) -> None:
    shown = run_cli("catalog", "show", "--policies", str(shipped_policies), "DF-003").output
    assert "Scope  cluster: evaluated once per Data Fabric cluster" in shown
    node_rule = run_cli("catalog", "show", "--policies", str(shipped_policies), "KERN-009").output
    assert "Scope" not in node_rule
    data = json.loads(run_cli("catalog", "show", "--policies", str(shipped_policies), "DF-003",
                              "--format", "json").output)
    assert data["scope"] == "cluster"
