"""The checkout is the Ansible collection m7guard.hardening (galaxy.yml): its name is the one
m7guard.locate and the playbooks use, its version, stated there alone, is the Python
distributions' version, and the roles keep no plugins of their own (a role of a collection
cannot: they live in plugins/)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import yaml

import field_encryption
import m7guard
from m7guard.locate import COLLECTION

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
galaxy_version = runpy.run_path(str(ROOT / "packaging/galaxy_version.py"))["galaxy_version"]


def test_name_and_version_are_the_projects() -> None:
    assert (GALAXY["namespace"], GALAXY["name"]) == COLLECTION
    assert GALAXY["version"] == field_encryption.__version__ == m7guard.__version__


def test_galaxy_yml_is_the_one_place_the_version_is_stated() -> None:
    assert galaxy_version(ROOT) == GALAXY["version"]
    for path in (ROOT / "pyproject.toml", ROOT / "packaging/field-encryption/pyproject.toml"):
        text = path.read_text()
        assert re.search(r"^version\s*=", text, re.MULTILINE) is None, path
        assert re.search(r'^dynamic = \[.*"version"', text, re.MULTILINE), path
    assert "__version__ = _installed_version()" in (
        ROOT / "field_encryption/__init__.py"
    ).read_text()


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("namespace: m7guard\nversion: 1.2.3\n", "1.2.3"),
        ("version: '1.2.3-rc.1'  # next\n", "1.2.3-rc.1"),
        ('version: "2.0.0"\nnested:\n  version: 9.9.9\n', "2.0.0"),
    ],
)
def test_the_version_line_is_read(tmp_path: Path, text: str, version: str) -> None:
    (tmp_path / "galaxy.yml").write_text(text)
    assert galaxy_version(tmp_path) == version


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("namespace: m7guard\n", "found 0"),
        ("version: 1.0.0\nversion: 1.0.1\n", "found 2"),
        ("version: latest\n", "found 0"),
        (None, "cannot read"),
    ],
)
def test_a_galaxy_yml_without_one_version_stops_the_build(
    tmp_path: Path, text: str | None, why: str
) -> None:
    if text is not None:
        (tmp_path / "galaxy.yml").write_text(text)
    with pytest.raises(SystemExit, match=why):
        galaxy_version(tmp_path)


def test_the_roles_keep_no_plugins_of_their_own() -> None:
    for role in sorted((ROOT / "roles").iterdir()):
        own = [d.name for d in role.iterdir()
               if d.name in {"library", "module_utils"} or d.name.endswith("_plugins")]
        assert not own, f"{role.name} has {own}: plugins go in plugins/"


def test_the_playbooks_name_the_roles_by_the_collection() -> None:
    prefix = ".".join(COLLECTION) + "."
    roles = {r.name for r in (ROOT / "roles").iterdir()}
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        for name in re.findall(r"^\s+(?:- role|name): (\S+)\s*$", playbook.read_text(),
                               re.MULTILINE):
            if name.removeprefix(prefix) in roles:
                assert name.startswith(prefix), f"{playbook.name}: {name}"


def test_the_ansible_core_the_collection_requires_is_the_one_installed_with_m7guard() -> None:
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    pin = re.search(r'"ansible-core(>=[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and runtime["requires_ansible"] == pin.group(1)
