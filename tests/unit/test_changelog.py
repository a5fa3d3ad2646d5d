"""The collection's release notes: fragments in changelogs/fragments/, which
antsibull-changelog lints and turns into a release's entry of changelogs/changelog.yaml and
CHANGELOG.md (`make changelog`), at the version galaxy.yml states.

The release runs in a temporary copy of the collection (it consumes the fragments and calls
ansible-doc for the plugins), so the checkout keeps its fragments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = Path(sys.executable).parent / "antsibull-changelog"
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def _run(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{TOOL.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if where.parts[-3] == "ansible_collections":  # ansible-doc finds the copy there
        env["ANSIBLE_COLLECTIONS_PATH"] = str(where.parents[2])
    return subprocess.run([str(TOOL), *args], cwd=where, capture_output=True, text=True,
                          env=env, check=False, timeout=300)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """A copy of the collection's files the release reads, where a collection is found."""
    where = tmp_path / "ansible_collections" / "m7guard" / "hardening"
    where.mkdir(parents=True)
    for name in ("galaxy.yml", "README.md"):
        shutil.copy(ROOT / name, where / name)
    for name in ("changelogs", "plugins", "meta"):
        shutil.copytree(ROOT / name, where / name)
    return where


def test_the_fragments_lint_clean() -> None:
    done = _run(ROOT, "lint")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr
    assert list((ROOT / "changelogs" / "fragments").glob("*.yml")), "no fragment"


def test_a_fragment_of_an_unknown_section_is_refused(collection: Path) -> None:
    (collection / "changelogs" / "fragments" / "bad.yml").write_text(
        "improvements:\n  - data_fabric - a section the configuration does not have.\n")
    done = _run(collection, "lint")
    assert done.returncode != 0 and "bad.yml" in done.stdout + done.stderr, done.stdout


def test_a_release_turns_the_fragments_into_the_notes_with_a_security_section(
        collection: Path) -> None:
    fragments = collection / "changelogs" / "fragments"
    (fragments / "security.yml").write_text(
        "security_fixes:\n  - data_fabric - a security fix of this test's own.\n")
    kept = sorted(p.name for p in fragments.glob("*.yml"))
    done = _run(collection, "release", "--date", "2026-12-05")
    assert done.returncode == 0, done.stdout + done.stderr
    notes = (collection / "CHANGELOG.md").read_text()
    assert "v" + str(VERSION).replace(".", "\\.") in notes, notes[:300]  # escaped dots
    for section in ("Release Summary", "Minor Changes", "Security Fixes", "Bugfixes"):
        assert f"### {section}" in notes, notes
    assert "a security fix of this test\\'s own" in notes, notes
    assert not list(fragments.glob("*.yml"))  # consumed
    changes = yaml.safe_load((collection / "changelogs" / "changelog.yaml").read_text())
    release = changes["releases"][str(VERSION)]
    assert sorted(release["fragments"]) == kept
    new = {p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")
           if f'version_added: "{VERSION}"' in p.read_text()}
    assert {m["name"] for m in release.get("modules", [])} == new  # version_added: VERSION
