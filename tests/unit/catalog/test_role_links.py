"""The rule -> role -> tag link (issue 13): `catalog validate` fails when a rule's remediation
role does not exist or a remediation tag is on no task of it; preflight rules have no role;
every remediation task of roles/ names its rule ids and is tagged with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from m7guard.catalog.roles import named_rule_ids, role_task_problems, role_tasks
from m7guard.cli import cli
from m7guard.validate import validate

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of policies/ and roles/ (side by side) to break on purpose."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    shutil.copytree(REPO / "roles", tmp_path / "roles")
    return tmp_path


def _validate_cli(tree: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["catalog", "validate", "--policies", str(tree / "policies"), "--tests",
              str(REPO / "tests")], catch_exceptions=False
    )
    return result.exit_code, result.output


def _set_remediation(tree: Path, rule: str, **remediation: object) -> None:
    path = next((tree / "policies/rules").glob(f"*/{rule}.yml"))
    data = yaml.safe_load(path.read_text())
    data["remediation"] = remediation
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


def test_every_remediation_task_names_and_tags_its_rule_ids() -> None:
    problems = role_task_problems(REPO / "roles")
    assert problems == [], "\n".join(map(str, problems))


def test_the_shipped_catalog_links_every_rule_to_a_role_task() -> None:
    _, problems = validate(REPO / "policies")
    assert problems == [], "\n".join(map(str, problems))


def test_the_copy_is_valid(tree: Path) -> None:
    code, output = _validate_cli(tree)
    assert code == 0, output


def test_a_missing_remediation_role_fails_validation(tree: Path) -> None:
    _set_remediation(tree, "KERN-001", role="kernel_tunning", tags=["KERN-001"])
    code, output = _validate_cli(tree)
    assert code == 1
    assert "KERN-001.yml: remediation.role: no role 'kernel_tunning'" in output


def test_a_tag_no_task_carries_fails_validation(tree: Path) -> None:
    _set_remediation(tree, "KERN-001", role="kernel_tuning", tags=["KERN-001", "KERN-101"])
    code, output = _validate_cli(tree)
    assert code == 1
    assert "no task of role kernel_tuning carries the tag KERN-101" in output


def test_a_tag_removed_from_the_roles_tasks_fails_validation(tree: Path) -> None:
    # PERF-009's tag lives on three tasks of runtime.yml only
    runtime = tree / "roles/kernel_tuning/tasks/runtime.yml"
    runtime.write_text(runtime.read_text().replace("tags: [PERF-009, irq]", "tags: [irq]"))
    code, output = _validate_cli(tree)
    assert code == 1
    assert (
        "PERF-009.yml: remediation.tags: no task of role kernel_tuning carries the tag PERF-009"
        in (output)
    )


def test_preflight_rules_have_no_remediation_role(tree: Path) -> None:
    _, problems = validate(REPO / "policies")
    assert problems == []
    _set_remediation(
        tree, "PRE-005", role="zero_trust_network", tags=["PRE-005"], notes="Fix it now"
    )
    code, output = _validate_cli(tree)
    assert code == 1 and "PRE-005.yml: remediation: False schema does not allow" in output


def test_a_host_rule_needs_a_remediation_role(tree: Path) -> None:
    _set_remediation(tree, "KERN-001", notes="Somebody should fix this by hand")
    code, output = _validate_cli(tree)
    assert code == 1 and "KERN-001.yml: remediation.role: is required" in output


def test_preflight_remediation_reads_as_notes() -> None:
    from m7guard.catalog import load_catalog

    rule = load_catalog(REPO / "policies").rule("PRE-005")
    assert rule.remediation_role is None and rule.remediation_tags == ()
    assert "m7guard preflight" in rule.remediation_command
    assert rule.described()["remediation"]["role"] is None


def test_named_rule_ids_expand_runs() -> None:
    assert named_rule_ids("KERN-001 .. KERN-003, PERF-009 | x") == {
        "KERN-001",
        "KERN-002",
        "KERN-003",
        "PERF-009",
    }
    assert named_rule_ids("Configure (AUD-001, AUD-002)") == {"AUD-001", "AUD-002"}
    assert named_rule_ids("IDN-004..006 | y") == {"IDN-004", "IDN-005", "IDN-006"}
    assert named_rule_ids("no id here") == set()


def test_the_convention_check_finds_a_task_that_breaks_it(tree: Path) -> None:
    runtime = tree / "roles/kernel_tuning/tasks/runtime.yml"
    text = runtime.read_text()
    runtime.write_text(
        text.replace("- name: PERF-009 | Turn numad off", "- name: Turn numad off").replace(
            "- name: PERF-010 | Read the NVMe devices again",
            "- name: PERF-012 | Read the NVMe devices again",
        )
    )
    problems = [str(p) for p in role_task_problems(tree / "roles")]
    assert any("Turn numad off: tagged PERF-009 but does not name it" in p for p in problems)
    assert any("names PERF-012 but is not tagged so" in p for p in problems)
    assert any(
        "Read the NVMe devices again: tagged PERF-010 but does not name it" in p for p in problems
    )
    assert len(problems) == 3


def test_tags_are_inherited_through_imports() -> None:
    tasks = role_tasks(REPO / "roles/kerberos_mfa")
    rollback = next(t for t in tasks if t.name == "Reload sshd")
    assert "IDN-006" in rollback.effective_rule_tags and not rollback.rule_tags
