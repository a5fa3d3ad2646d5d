"""The Ansible collection m7guard.hardening as a user gets it: built by `ansible-galaxy
collection build` from the checkout, installed offline from the tarball into a temporary
path, and applied by its fully qualified name from a playbook and a configuration outside the
repository to a lab node (node3, reset before and after). The run takes os_baseline's core
dump step (OSB-005), which goes through the role's preflight probe (a file of the role), the
collection's m7guard_files module and its module_utils, and a handler."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from labkit import BIN, ROOT, LabHandle, play_recap

pytestmark = [pytest.mark.lab]

NODE = "node3"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
LIMITS = "/etc/security/limits.d/10-m7guard-os-baseline-core.conf"


def _run(*argv: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The built tarball, and the collection installed from it under a directory that is
    not the repository's, with an ansible.cfg that knows no other collection path."""
    work = tmp_path_factory.mktemp("collection")
    assert ROOT not in work.parents
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    build = _run(str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path",
                 str(work), cwd=work, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = work / f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    # --force: a copy of m7guard.hardening in a configured path would otherwise count as
    # installed, and nothing would be put under work/
    install = _run(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force",
                   "-p", str(work / "collections"), str(tarball), cwd=work, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (work / "collections/ansible_collections/m7guard/hardening/MANIFEST.json").is_file()
    (work / "ansible.cfg").write_text(
        "[defaults]\n"
        f"collections_path = {work / 'collections'}\n"
        "collections_scan_sys_path = False\n"
        "interpreter_python = auto_silent\n")
    (work / "playbook.yml").write_text(
        "---\n"
        "- name: A role of the installed collection, by its fully qualified name\n"
        f"  hosts: {NODE}\n"
        "  gather_facts: false\n"
        "  roles:\n"
        f"    - role: {FQCN}.os_baseline\n")
    return {"work": work, "tarball": tarball, "cfg": work / "ansible.cfg"}


def test_the_tarball_holds_the_roles_and_plugins_and_nothing_else(outside: dict[str, Path]):
    with tarfile.open(outside["tarball"]) as tar:
        names = set(tar.getnames())
    assert {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md",
            "roles/os_baseline/tasks/main.yml", "roles/os_baseline/files/m7guard-security-pending",
            "plugins/modules/m7guard_files.py", "plugins/module_utils/m7guard_fileio.py",
            "plugins/filter/kernel_tuning.py", "playbooks/site.yml"} <= names
    tops = {name.split("/", 1)[0] for name in names}
    assert tops <= {"MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "changelogs",
                    "docs", "meta", "plugins", "playbooks", "roles"}, tops
    # the release notes ship (changelogs/changelog.yaml); unreleased fragments do not
    assert not [n for n in names if n.startswith("changelogs/fragments/")], names
    assert not any("__pycache__" in name for name in names)


def test_a_playbook_outside_the_repository_applies_a_role_by_its_name(
        lab: LabHandle, outside: dict[str, Path]) -> None:
    lab.m7guard("lab", "reset", NODE)
    try:
        assert lab.ssh(NODE, f"test ! -e {LIMITS}", check=False).returncode == 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env["ANSIBLE_CONFIG"] = str(outside["cfg"])
        run = _run(str(BIN / "ansible-playbook"), "-i", str(lab.inventory), "playbook.yml",
                   "--tags", "OSB-005", cwd=outside["work"], env=env)
        recap = play_recap(run.stdout).get(NODE, {})
        assert run.returncode == 0 and recap.get("failed") == 0, run.stdout[-4000:] + run.stderr
        assert recap["changed"] > 0
        assert f"{FQCN}.os_baseline : OSB-005" in run.stdout
        assert f"{outside['work'] / 'collections'}" in _run(
            str(BIN / "ansible-galaxy"), "collection", "list", FQCN, cwd=outside["work"],
            env=env).stdout
        limits = lab.ssh(NODE, f"cat {LIMITS}").stdout
        assert ["*", "hard", "core", "0"] in [line.split() for line in limits.splitlines()], limits
    finally:
        lab.m7guard("lab", "reset", NODE, check=False)
