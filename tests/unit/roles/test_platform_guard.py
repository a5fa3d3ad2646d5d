"""platform_guard stops a role on a system its meta/main.yml does not list, before the role
changes anything; m7guard_untested_platform_ok lets it run there, with a warning. The play
runs for real, on this machine through the local connection (the action only reads facts),
with small roles whose meta lists this machine's release or one it does not run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kernel_tuning_kit import ROOT, load_module

from m7guard.lab.spec import RELEASES

guard = load_module("m7guard_platform_guard_action", ROOT / "plugins/action/platform_guard.py")
BIN = Path(sys.executable).parent


def _os_release() -> dict[str, str]:
    out = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value.strip('"')
    return out


def test_every_role_starts_with_the_guard_and_lists_its_platforms() -> None:
    for role in sorted((ROOT / "roles").iterdir()):
        main = (role / "tasks/main.yml").read_text()
        first = main.split("\n- name:", 1)[1]
        assert first.split("\n- ", 1)[0].count("m7guard.hardening.platform_guard: {}") == 1, role
        tested = guard.tested_platforms(yaml.safe_load((role / "meta/main.yml").read_text()))
        # exactly the releases the tests' lab runs every role on (its release matrix)
        assert tested == {"Debian": RELEASES}, role.name


@pytest.mark.parametrize(("facts", "untested"), [
    ({"distribution": "Debian", "distribution_release": "bookworm",
      "distribution_version": "12.8"}, None),
    ({"distribution": "Debian", "distribution_release": "trixie",
      "distribution_version": "13.1"},
     "os_baseline is not tested on node3's system, Debian 13.1 (trixie): it is tested on "
     "Debian bookworm"),
    ({"distribution": "Rocky", "distribution_release": "Blue Onyx",
      "distribution_version": "9.3"},
     "os_baseline is not tested on node3's system, Rocky 9.3 (Blue Onyx)"),
    ({}, "os_baseline is not tested on node3's system, an unknown system"),
])
def test_judge_names_the_system_and_the_tested_ones(facts: dict[str, Any],
                                                    untested: str | None) -> None:
    said = guard.judge("os_baseline", "node3", facts, {"Debian": ("bookworm",)})
    assert said == untested if untested is None else said.startswith(untested)


@pytest.mark.parametrize("meta", [{}, {"galaxy_info": {"platforms": []}},
                                  {"galaxy_info": {"platforms": [{"versions": ["x"]}]}}])
def test_a_meta_without_platforms_is_refused(meta: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        guard.tested_platforms(meta)


def _play(tmp_path: Path, releases: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    role = tmp_path / "roles" / "guarded"
    (role / "meta").mkdir(parents=True, exist_ok=True)
    (role / "tasks").mkdir(parents=True, exist_ok=True)
    (role / "meta/main.yml").write_text(json.dumps({"galaxy_info": {
        "role_name": "guarded", "platforms": [{"name": "Debian", "versions": releases}]}}))
    marker = tmp_path / "changed"
    (role / "tasks/main.yml").write_text(
        "- name: Guard\n  m7guard.hardening.platform_guard: {}\n  register: guarded\n"
        "- name: Record\n  ansible.builtin.copy:\n    content: \"{{ guarded | to_json }}\"\n"
        f"    dest: {marker}\n  check_mode: false\n")
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        "  roles: [guarded]\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(tmp_path / "play.yml"),
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    recorded = json.loads(marker.read_text()) if marker.exists() else {}
    return proc.returncode, {"out": proc.stdout + proc.stderr, **recorded}


def test_a_listed_release_runs_and_an_unlisted_one_stops_the_role(tmp_path: Path) -> None:
    here = _os_release()
    rc, seen = _play(tmp_path / "listed", [here["VERSION_CODENAME"]], "--check")
    assert rc == 0, seen["out"]
    assert seen["tested"] is True and seen["changed"] is False
    assert seen["release"] == here["VERSION_CODENAME"]

    rc, seen = _play(tmp_path / "unlisted", ["buzz"])
    assert rc == 2, seen["out"]
    assert "tested" not in seen  # the role stopped at the guard: the next task never ran
    assert (f"guarded is not tested on localhost's system, Debian {here['VERSION_ID']}"
            in " ".join(seen["out"].split()))
    assert "it is tested on Debian buzz" in " ".join(seen["out"].split())
    assert "set m7guard_untested_platform_ok: true" in " ".join(seen["out"].split())


def test_the_override_runs_the_role_with_a_warning(tmp_path: Path) -> None:
    rc, seen = _play(tmp_path / "true", ["buzz"], "-e", "m7guard_untested_platform_ok=true")
    assert rc == 0, seen["out"]
    assert seen["tested"] is False
    assert "running anyway, unsupported" in " ".join(seen["out"].split())
    rc, seen = _play(tmp_path / "maybe", ["buzz"], "-e", "m7guard_untested_platform_ok=maybe")
    assert rc == 2 and "tested" not in seen
    assert "m7guard_untested_platform_ok: 'maybe' is not a boolean" in seen["out"]
