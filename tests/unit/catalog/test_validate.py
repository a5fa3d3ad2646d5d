"""`m7guard catalog validate` accepts the shipped catalog, names file and field of each defect."""

from __future__ import annotations

import shutil
from pathlib import Path

from m7guard.checks import CHECKS_DIR
from m7guard.validate import validate


def test_shipped_catalog_is_valid(run_cli, shipped_policies: Path) -> None:
    result = run_cli("catalog", "validate", "--policies", str(shipped_policies))
    assert result.exit_code == 0, result.output
    files = len(list((shipped_policies / "rules").glob("*/*.yml")))
    assert f"catalog valid: {files} rules" in result.output


def test_every_rule_has_exactly_one_check_and_every_check_a_rule(shipped_policies: Path) -> None:
    catalog, problems = validate(shipped_policies)
    assert problems == []
    kernel = {r.check for r in catalog.rules.values() if r.area == "kernel"}
    assert kernel == {f"m7guard/checks/kernel.py::test_kern_{n:03d}" for n in range(1, 17)}


def _invalid(run_cli, policies: Path, *extra: str) -> str:
    result = run_cli("catalog", "validate", "--policies", str(policies), *extra)
    assert result.exit_code == 1, result.output
    assert "catalog invalid" in result.output
    return result.output


def test_rejects_unknown_severity(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(policies / "rules/kernel/KERN-003.yml", lambda d: d.update(severity="extreme"))
    out = _invalid(run_cli, policies)
    assert "policies/rules/kernel/KERN-003.yml: severity: 'extreme' is not one of" in out


def test_rejects_duplicate_rule_id(run_cli, policies: Path) -> None:
    (policies / "rules/dup").mkdir()
    shutil.copy(policies / "rules/kernel/KERN-005.yml", policies / "rules/dup/KERN-005.yml")
    out = _invalid(run_cli, policies)
    # files are read in path order: the second one read is the duplicate
    assert "policies/rules/kernel/KERN-005.yml: id: duplicate rule id KERN-005" in out
    assert "(also in policies/rules/dup/KERN-005.yml)" in out


def test_rejects_reference_to_unknown_requirement(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(
        policies / "rules/kernel/KERN-002.yml",
        lambda d: d["references"]["pci_dss_4"].append("2.2.99"),
    )
    out = _invalid(run_cli, policies)
    assert (
        "policies/rules/kernel/KERN-002.yml: references.pci_dss_4[2]: '2.2.99' is not a "
        "requirement of policies/frameworks/pci_dss_4.yml"
    ) in out


def test_an_os_rule_cites_cis_or_says_why_it_cannot(run_cli, policies: Path, edit_yaml) -> None:
    """cis_debian_12.yml expects every rule of the os area to reference it (expected_for_areas);
    OSB-010 says in `unmapped` why the benchmark has nothing for it."""
    edit_yaml(policies / "rules/os_baseline/OSB-010.yml", lambda d: d.pop("unmapped"))
    edit_yaml(policies / "rules/os_baseline/OSB-012.yml",
              lambda d: d["references"].pop("cis_debian_12"))
    out = _invalid(run_cli, policies)
    for rule in ("OSB-010", "OSB-012"):
        assert (f"policies/rules/os_baseline/{rule}.yml: references: "
                "policies/frameworks/cis_debian_12.yml "
                "expects every rule of the area 'os_baseline' to reference it") in out
    assert "OSB-011" not in out


def test_a_rule_cannot_both_reference_and_unmap_a_framework(run_cli, policies: Path,
                                                             edit_yaml) -> None:
    edit_yaml(policies / "rules/os_baseline/OSB-012.yml",
              lambda d: d.update(unmapped={"cis_debian_12": "a reason that is long enough"}))
    edit_yaml(policies / "rules/os_baseline/OSB-011.yml",
              lambda d: d.update(unmapped={"cis_debian_12": "short"}))
    out = _invalid(run_cli, policies)
    assert ("policies/rules/os_baseline/OSB-012.yml: unmapped.cis_debian_12: the rule references "
            "cis_debian_12: it cannot be unmapped too") in out
    assert "policies/rules/os_baseline/OSB-011.yml: unmapped.cis_debian_12:" in out


def test_rejects_reference_to_unknown_framework_file(run_cli, policies: Path) -> None:
    (policies / "frameworks/hipaa.yml").unlink()
    out = _invalid(run_cli, policies)
    assert "policies/rules/kernel/KERN-001.yml: references.hipaa: no framework file" in out


def test_rejects_rule_without_check_field(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(policies / "rules/kernel/KERN-004.yml", lambda d: d.pop("check"))
    out = _invalid(run_cli, policies)
    assert "policies/rules/kernel/KERN-004.yml: check: is required" in out


def test_rejects_rule_whose_check_does_not_exist(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(
        policies / "rules/kernel/KERN-004.yml",
        lambda d: d.update(check="m7guard/checks/kernel.py::test_kern_404"),
    )
    out = _invalid(run_cli, policies)
    assert (
        "policies/rules/kernel/KERN-004.yml: check: a rule without a check: "
        "m7guard/checks/kernel.py::test_kern_404 does not exist"
    ) in out


def test_rejects_check_without_rule(run_cli, policies: Path, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    shutil.copy(CHECKS_DIR / "kernel.py", checks / "kernel.py")
    (checks / "orphan.py").write_text(
        "from m7guard.checks import rule\n\n\n"
        '@rule("KERN-099", sysctl=["kernel.sysrq"])\n'
        "def test_kern_099(sysctl, params):\n"
        "    sysctl.require([0])\n\n\n"
        "def test_undecorated(host):\n"
        "    assert host\n"
    )
    out = _invalid(run_cli, policies, "--checks", str(checks))
    assert (
        "m7guard/checks/orphan.py: test_kern_099: a check without a rule: KERN-099 is not in "
        "policies/rules/"
    ) in out
    assert "m7guard/checks/orphan.py: test_undecorated: a check without a rule" in out


def test_rejects_two_checks_for_one_rule(run_cli, policies: Path, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    shutil.copy(CHECKS_DIR / "kernel.py", checks / "kernel.py")
    (checks / "again.py").write_text(
        "from m7guard.checks import rule\n\n\n"
        '@rule("KERN-001", sysctl=["kernel.kptr_restrict"])\n'
        "def test_again(sysctl, params):\n"
        "    sysctl.require([1])\n"
    )
    out = _invalid(run_cli, policies, "--checks", str(checks))
    assert "policies/rules/kernel/KERN-001.yml: check: KERN-001 has more than one check" in out


def test_rejects_waiver_without_justification(run_cli, policies: Path, tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(
        "---\nwaivers:\n"
        "  - rule: KERN-001\n    hosts: node1\n    expires: 2030-01-01\n    approver: ciso\n"
    )
    out = _invalid(run_cli, policies, "--waivers", str(waivers))
    assert f"{waivers.as_posix()}: waivers[0].justification: is required" in out


def test_rejects_shipped_example_waiver_without_justification(
    run_cli, policies: Path, edit_yaml
) -> None:
    edit_yaml(policies / "waivers.example.yml", lambda d: d["waivers"][1].pop("justification"))
    out = _invalid(run_cli, policies)
    assert "policies/waivers.example.yml: waivers[1].justification: is required" in out


def test_rejects_waiver_of_unknown_rule(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(policies / "waivers.example.yml", lambda d: d["waivers"][0].update(rule="NET-404"))
    out = _invalid(run_cli, policies)
    assert "policies/waivers.example.yml: waivers[0].rule: no rule NET-404 in the catalog" in out


def test_rejects_parameter_of_wrong_type_in_profile(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(
        policies / "profiles/pci_dss.yml",
        lambda d: d["parameters"]["KERN-001"].update(allowed="two"),
    )
    out = _invalid(run_cli, policies)
    assert (
        "policies/profiles/pci_dss.yml: parameters.KERN-001.allowed: 'two' is not a valid "
        "integer_list"
    ) in out


def test_rejects_unknown_parameter_in_profile(run_cli, policies: Path, edit_yaml) -> None:
    edit_yaml(policies / "profiles/pci_dss.yml", lambda d: d["parameters"]["KERN-001"].update(x=1))
    out = _invalid(run_cli, policies)
    assert (
        "policies/profiles/pci_dss.yml: parameters.KERN-001.x: KERN-001 has no such parameter"
        in out
    )


def test_rejects_rule_in_misnamed_file(run_cli, policies: Path) -> None:
    path = policies / "rules/kernel/KERN-016.yml"
    path.rename(path.with_name("KERN-116.yml"))
    out = _invalid(run_cli, policies)
    assert (
        "policies/rules/kernel/KERN-116.yml: id: KERN-016 must be in a file named KERN-016.yml"
        in out
    )


def test_rejects_broken_yaml(run_cli, policies: Path) -> None:
    (policies / "rules/kernel/KERN-010.yml").write_text("---\nid: [unclosed\n")
    out = _invalid(run_cli, policies)
    assert "policies/rules/kernel/KERN-010.yml: not valid YAML" in out
