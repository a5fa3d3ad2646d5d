"""One name per concern (docs/catalog.md, "Names"): a rule area is named after the role that
enforces it, and so are its playbook, its module of checks and the role's page; the old names
users wrote before 0.1.0 (areas in profiles and --area, the playbooks) are still read, and an
area that exists under neither name is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from m7guard.catalog.loader import load_catalog
from m7guard.catalog.model import AREA_ALIASES

ROOT = Path(__file__).resolve().parents[3]
# kernel_tuning owns every sysctl and boot parameter, so it enforces two areas judged apart
SHARED_ROLE = {"kernel": "kernel_tuning", "performance": "kernel_tuning"}
OLD_PLAYBOOKS = {
    "audit": "audit_logging",
    "baseline": "os_baseline",
    "encryption": "field_encryption",
    "identity": "kerberos_mfa",
    "network": "zero_trust_network",
    "tuning": "kernel_tuning",
}


def test_every_area_is_named_after_its_role_playbook_checks_and_page() -> None:
    catalog = load_catalog(ROOT / "policies")
    areas: dict[str, set[str | None]] = {}
    for rule in catalog.rules.values():
        areas.setdefault(rule.area, set()).add(rule.remediation_role)
        if rule.area != "preflight":
            assert rule.check.startswith(f"m7guard/checks/{rule.area}.py::"), rule.id
    for area, roles in sorted(areas.items()):
        if area == "preflight":
            assert roles == {None}
            continue
        role = SHARED_ROLE.get(area, area)
        assert roles == {role}, area
        assert (ROOT / "playbooks" / f"{role}.yml").is_file(), area
        assert (ROOT / "docs" / "roles" / f"{role}.md").is_file(), area
    # every role that enforces rules is an area's name (m7i_profile enforces none)
    enforcing = {r for roles in areas.values() for r in roles if r}
    assert enforcing == (set(areas) - {"preflight", "kernel", "performance"}) | {"kernel_tuning"}


def test_old_area_names_select_the_same_rules(
    policies: Path, edit_yaml: Callable[[Path, Callable[[Any], Any]], None]
) -> None:
    for old, new in AREA_ALIASES.items():
        edit_yaml(policies / "profiles/kernel.yml",
                  lambda d, old=old: d.update(select=[{"areas": [old]}]))
        catalog = load_catalog(policies)
        selected = {r.id for r in catalog.rules_for(catalog.profile("kernel"))}
        assert selected and selected == {r.id for r in catalog.rules.values() if r.area == new}


def test_a_profile_naming_no_area_is_refused(
    run_cli: Callable[..., Any], policies: Path,
    edit_yaml: Callable[[Path, Callable[[Any], Any]], None],
) -> None:
    edit_yaml(policies / "profiles/kernel.yml",
              lambda d: d.update(select=[{"areas": ["idnetity"]}]))
    result = run_cli("catalog", "validate", "--policies", str(policies), "--no-proof")
    assert result.exit_code == 1
    assert "profiles/kernel.yml: select[0].areas[0]: no area 'idnetity' (areas: " in result.output


def test_catalog_list_reads_an_old_area_and_refuses_an_unknown_one(run_cli) -> None:
    listed = run_cli("catalog", "list", "--area", "identity", "--format", "json")
    assert listed.exit_code == 0, listed.output
    ids = {r["id"] for r in json.loads(listed.output)}
    assert ids == {f"IDN-{n:03d}" for n in range(1, 15)}
    assert {r["area"] for r in json.loads(listed.output)} == {"kerberos_mfa"}
    unknown = run_cli("catalog", "list", "--area", "identiy")
    assert unknown.exit_code == 2
    assert "no area 'identiy'" in unknown.output


def test_each_old_playbook_only_imports_the_playbook_under_its_new_name() -> None:
    for old, new in OLD_PLAYBOOKS.items():
        plays = yaml.safe_load((ROOT / "playbooks" / f"{old}.yml").read_text())
        assert len(plays) == 1, old
        (play,) = plays
        assert set(play) == {"name", "ansible.builtin.import_playbook"}, old
        assert play["ansible.builtin.import_playbook"] == f"{new}.yml"
        assert (ROOT / "playbooks" / f"{new}.yml").is_file()
    site = (ROOT / "playbooks" / "site.yml").read_text()
    assert not any(f"import_playbook: {old}.yml" in site for old in OLD_PLAYBOOKS)
