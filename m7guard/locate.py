"""Where the data m7guard ships is found: the rule catalog (policies/), the roles (roles/), the
plugins they share (plugins/) and the playbooks (playbooks/).

Run from a checkout, they are the source tree's own directories. An installed wheel carries a
copy of each inside the package (m7guard/_data/, written by the build step in setup.py), so
an installed m7guard validates its catalog, judges size-derived values with the roles' numbers
and runs preflight over the roles exactly as a checkout does. Every part of m7guard that needs
one of them asks here; options such as --policies and --roles still take precedence where a
command has them.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

SHIPPED = ("policies", "roles", "plugins", "playbooks")
# The Ansible collection the roles and plugins form (galaxy.yml); the playbooks name the roles
# by its fully qualified names.
COLLECTION = ("m7guard", "hardening")
SOURCE_TREE = Path(__file__).resolve().parents[1]
PACKAGED = Path(__file__).resolve().parent / "_data"


def from_checkout() -> bool:
    """Whether m7guard runs from its source tree (a checkout, or an editable install of one)."""
    return (SOURCE_TREE / "pyproject.toml").is_file() and (SOURCE_TREE / "policies").is_dir()


def shipped(name: str) -> Path:
    """The directory `name` (one of SHIPPED): the checkout's, else the installed copy's. The
    path is returned whether or not it exists; the caller says what is missing."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped with m7guard (one of {', '.join(SHIPPED)})")
    return shipped_root() / name


def shipped_root() -> Path:
    """The directory holding all of SHIPPED: the source tree, or the installed copy."""
    return SOURCE_TREE if from_checkout() else PACKAGED


def collections_env(root: Path) -> dict[str, str]:
    """Environment for an ansible command on the playbooks of root (the checkout, or an
    installed copy): a collections path in which ansible_collections/m7guard/hardening is
    root, made once per process under the temporary directory."""
    namespace, name = COLLECTION
    base = Path(tempfile.gettempdir()) / f"m7guard-collections-{os.getpid()}"
    link = base / "ansible_collections" / namespace / name
    if not link.is_symlink() or link.resolve() != root.resolve():
        if not base.exists():
            atexit.register(shutil.rmtree, base, True)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(root.resolve(), target_is_directory=True)
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(base),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"}


def import_file(name: str, path: Path) -> ModuleType:
    """The Python file at path imported as module `name` (once: a second call returns it);
    how m7guard reads the roles' plugins and modules and a checks directory of one's own."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
