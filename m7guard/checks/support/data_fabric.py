"""What the DF-* checks share: `maprcli -json` on the node, and the data_fabric role's own
reading of the cluster.

Which volumes are regulated, what a public ACE is, how an ACL entry and an audit setting
read: one definition, in the role's module (plugins/modules/data_fabric_cluster.py), which the
checks load from the plugins beside the roles m7guard ships, as the kernel and network checks
load theirs. The inventory variables are the role's (`data_fabric_regulated_volumes`, ...),
read from the host's inventory and, where it sets none, from the role's defaults.
"""

from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from m7guard.checks.support.netplan import render
from m7guard.checks.support.sizing import ROLES_ENV, plugins_dir, roles_dir
from m7guard.checks.support.verdict import EvidenceError
from m7guard.locate import import_file

ROLE = "data_fabric"


@cache
def role_module(name: str = "data_fabric_cluster") -> ModuleType:
    """One of the data_fabric role's modules (plugins/modules/NAME.py)."""
    path = plugins_dir() / "modules" / f"{name}.py"
    if not path.is_file():
        raise EvidenceError(f"{path} not found: m7guard's roles are missing; set {ROLES_ENV}")
    try:
        return import_file(f"_m7guard_{name}", path)
    except ImportError as exc:
        raise EvidenceError(str(exc)) from exc


@cache
def _defaults() -> dict[str, Any]:
    path = roles_dir() / ROLE / "defaults" / "main.yml"
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read {path}: {exc}") from None


def setting(host: Any, name: str) -> Any:
    """data_fabric_NAME for the host: its inventory's value (Jinja expressions rendered with
    the host's variables, as Ansible gives it to the role), else the role's default."""
    full = f"{ROLE}_{name}"
    backend = getattr(host, "backend", None)
    if getattr(backend, "NAME", "") == "ansible":
        variables = backend.get_variables()
        if full in variables:
            return render(variables[full], variables, full)
    if full not in _defaults():
        raise EvidenceError(f"{full} is neither in the inventory nor a default of {ROLE}")
    return _defaults()[full]


def maprcli(host: Any, evidence: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    """The data of `maprcli ARGS -json` on the host (the command data_fabric_maprcli names,
    as for the role); EvidenceError for an error reply."""
    command = " ".join(["maprcli", *args])
    run = host.run(" ".join(shlex.quote(str(a))
                            for a in (setting(host, "maprcli"), *args, "-json")))
    evidence.setdefault("commands", []).append(command)
    module = role_module()
    try:
        return list(module.reply_data(run.rc, run.stdout, run.stderr, command))
    except module.DataFabricError as exc:
        raise EvidenceError(str(exc)) from None
