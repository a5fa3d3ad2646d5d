#!/usr/bin/python
"""Ansible module: build this project's wheel on the controller, reproducibly."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: m7guard_wheel
short_description: Build a project's wheel (pip wheel --no-deps) into a directory
version_added: "0.1.0"
description:
  - Copies the project's packaging files (those of O(project) when given), its
    C(requirements/) directory, the files its version is read from (C(galaxy.yml),
    C(packaging/galaxy_version.py)) and the packages named to a fresh directory under O(dest)
    and runs C(pip wheel --no-deps) there, so builds never write into the checkout and
    runs in parallel do not share a build tree.
  - SOURCE_DATE_EPOCH is fixed, so the same sources give a byte-identical wheel and a copy
    to a node reports no change.
  - Only the controller's temporary directory changes, so the module reports changed=false
    and also builds in check mode.
  - When O(source) is a C(.whl) file it is used as it is.
options:
  source:
    description: Project directory (with pyproject.toml) or a built wheel file.
    type: path
    required: true
  dest:
    description: Directory to build in (created when missing).
    type: path
    required: true
  project:
    description:
      - Directory whose C(pyproject.toml) and C(README.md) describe the distribution, when
        it is not O(source) itself (this repository's C(packaging/field-encryption)).
    type: path
  packages:
    description: Top-level entries of the project to copy besides the packaging files.
    type: list
    elements: str
    default: [field_encryption, m7guard]
author:
  - m7guard
"""

RETURN = r"""
path:
  description: The wheel file on the controller.
  type: str
  returned: success
filename:
  description: The wheel's file name.
  type: str
  returned: success
name:
  description: Distribution name.
  type: str
  returned: success
version:
  description: Distribution version.
  type: str
  returned: success
sha256:
  description: SHA-256 of the wheel file.
  type: str
  returned: success
requires_python:
  description: The wheel's Requires-Python (its METADATA), or an empty string.
  type: str
  returned: success
requires_floors:
  description: >-
    The lowest version of each dependency the wheel requires whatever its extras and markers
    (its METADATA's unconditional `Requires-Dist: NAME>=VERSION`), by lower-case name.
  type: dict
  returned: success
"""


PACKAGING_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "LICENSE", "MANIFEST.in")
DATA_DIRS = ("requirements",)  # read by the pyproject files (their extras)
# read by the setup.py files: the release version, stated once in galaxy.yml
VERSION_FILES = ("galaxy.yml", "packaging/galaxy_version.py")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can carry


class WheelError(Exception):
    pass


def wheel_facts(path: Path) -> dict[str, Any]:
    name, version = path.name.split("-")[:2]
    return {
        "path": str(path),
        "filename": path.name,
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "requires_python": requires_python(path),
        "requires_floors": requires_floors(path),
    }


def _metadata_headers(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise WheelError(f"{path.name} has {len(names)} METADATA files, expected one")
            text = wheel.read(names[0]).decode("utf-8")
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelError(f"{path.name} cannot be read as a wheel: {exc}") from exc
    return text.split("\n\n", 1)[0]


def requires_python(path: Path) -> str:
    """Requires-Python of a wheel's METADATA ("" when it states none)."""
    found = re.search(r"^Requires-Python:[ \t]*(.*?)[ \t]*$", _metadata_headers(path),
                      re.MULTILINE)
    return found.group(1) if found else ""


def requires_floors(path: Path) -> dict[str, str]:
    """NAME -> VERSION of the `>=VERSION` clause of each `Requires-Dist` without a marker (an
    extra's or a platform's); "" for a requirement without one."""
    floors = {}
    for line in re.findall(r"^Requires-Dist:[ \t]*(.*?)[ \t]*$", _metadata_headers(path),
                           re.MULTILINE):
        if ";" in line:
            continue
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$", line)
        if found is None:
            raise WheelError(f"{path.name}: requirement {line!r} cannot be read")
        floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", found.group(2))
        floors[found.group(1).lower()] = floor.group(1) if floor else ""
    return floors


def build(source: Path, dest: Path, packages: list[str],
          project: Path | None = None) -> dict[str, Any]:
    if source.is_file() and source.suffix == ".whl":
        return wheel_facts(source)
    project = project or source
    if not (project / "pyproject.toml").is_file():
        raise WheelError(f"{project} has no pyproject.toml and is not a .whl file")
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="src-", dir=dest))
    try:
        for name in PACKAGING_FILES:
            if (project / name).is_file():
                shutil.copy2(project / name, work / name)
        for name in DATA_DIRS:
            if (source / name).is_dir():
                shutil.copytree(source / name, work / name, ignore=IGNORE)
        for name in VERSION_FILES:
            if (source / name).is_file():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / name, work / name)
        for name in packages:
            if not (source / name).is_dir():
                raise WheelError(f"{source} has no package directory {name}")
            shutil.copytree(source / name, work / name, ignore=IGNORE)
        out = work / "dist"
        env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(work)],
            capture_output=True, text=True, env=env, check=False, timeout=600,
        )
        if proc.returncode != 0:
            raise WheelError(f"pip wheel failed: {proc.stderr.strip()[-2000:]}")
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            raise WheelError(f"pip wheel produced {len(wheels)} wheels, expected one")
        final = dest / wheels[0].name
        os.replace(wheels[0], final)
        return wheel_facts(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "project": {"type": "path"},
            "packages": {
                "type": "list",
                "elements": "str",
                "default": ["field_encryption", "m7guard"],
            },
        },
        supports_check_mode=True,
    )
    try:
        project = module.params["project"]
        result = build(Path(module.params["source"]), Path(module.params["dest"]),
                       module.params["packages"], Path(project) if project else None)
    except (WheelError, OSError, subprocess.SubprocessError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
