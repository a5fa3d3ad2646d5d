"""The release version of every artefact this repository builds, read from the one place it is
stated: galaxy.yml, the Ansible collection's metadata (ansible-galaxy reads a literal there).

Both setup.py files (the m7guard distribution's at the top, the field-encryption
distribution's in packaging/field-encryption/) run this file; the role's m7guard_wheel module
copies it and galaxy.yml into the scratch tree it builds a wheel in. At run time the packages
read the version of their installed distribution (importlib.metadata). Standard library only:
it runs inside pip's isolated build environment.
"""

from __future__ import annotations

import re
from pathlib import Path

VERSION_LINE = re.compile(r"""^version:[ \t]*(['"]?)([0-9][0-9A-Za-z.+-]*)\1[ \t]*(?:#.*)?$""",
                          re.MULTILINE)


def galaxy_version(root: Path) -> str:
    """The version galaxy.yml in ROOT states, or SystemExit naming the file."""
    path = root / "galaxy.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"{path}: cannot read the release version: {exc.strerror}") from exc
    found = [m.group(2) for m in VERSION_LINE.finditer(text)]
    if len(found) != 1:
        raise SystemExit(f"{path}: expected one top-level 'version: X.Y.Z' line, "
                         f"found {len(found)}")
    return found[0]
