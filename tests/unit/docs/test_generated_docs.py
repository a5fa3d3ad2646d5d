"""The generated reference pages match their sources (argument_specs, policies/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from m7guard.docsgen import drifted, expected_pages, write_pages

ROOT = Path(__file__).resolve().parents[3]


def test_committed_reference_pages_are_in_sync() -> None:
    stale = [str(p.relative_to(ROOT)) for p in drifted(ROOT)]
    assert stale == [], f"run `m7guard docs` and commit: {stale}"


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "policies", root / "policies")
    shutil.copytree(ROOT / "docs", root / "docs")
    role = root / "roles" / "demo_role" / "meta"
    role.mkdir(parents=True)
    (role / "argument_specs.yml").write_text(yaml.safe_dump({
        "argument_specs": {"main": {
            "short_description": "A role for the test",
            "options": {
                "demo_role_ports": {"type": "list", "elements": "int", "default": [22],
                                    "description": "Ports to open."},
                "demo_role_secret": {"type": "str", "no_log": True, "required": True,
                                     "description": "A secret."},
            },
        }},
    }))
    return root


def test_a_changed_argument_spec_makes_its_page_drift(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    write_pages(root)
    page = root / "docs" / "reference" / "variables" / "demo_role.md"
    text = page.read_text()
    assert "`demo_role_ports` | list of int |  | `[22]` | Ports to open." in text
    assert "secret (no_log)" in text
    assert drifted(root) == []

    spec = root / "roles" / "demo_role" / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("Ports to open.", "Ports to open, TCP."))
    assert drifted(root) == [page]


def test_a_changed_rule_makes_the_catalog_page_drift(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    write_pages(root)
    rule = next((root / "policies" / "rules").rglob("*.yml"))
    # The title is in the page whatever the rule (a severity edit was a no-op on a "high" rule).
    rule.write_text(rule.read_text().replace("\ntitle: ", "\ntitle: Changed ", 1))
    assert root / "docs" / "reference" / "rules.md" in drifted(root)


def test_a_page_for_a_removed_role_is_stale(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    write_pages(root)
    shutil.rmtree(root / "roles" / "demo_role")
    stale = root / "docs" / "reference" / "variables" / "demo_role.md"
    assert stale in drifted(root)
    write_pages(root)
    assert not stale.exists()
    assert set(expected_pages(root)) == {root / "docs" / "reference" / "rules.md"}
