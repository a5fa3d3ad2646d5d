"""The checkout is the Ansible collection m7guard.hardening (galaxy.yml): its name is the one
m7guard.locate and the playbooks use, its version is the Python distributions' version, and
the roles keep no plugins of their own (a role of a collection cannot: they live in
plugins/)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import field_encryption
from m7guard.locate import COLLECTION

ROOT = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())


def test_name_and_version_are_the_projects() -> None:
    assert (GALAXY["namespace"], GALAXY["name"]) == COLLECTION
    assert GALAXY["version"] == field_encryption.__version__


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
