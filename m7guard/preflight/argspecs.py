"""Every role's variables, for every host, against the role's meta/argument_specs.yml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from m7guard.preflight.intended import HostIntent


@dataclass(frozen=True)
class SpecProblem:
    host: str
    role: str
    variable: str
    reason: str

    def __str__(self) -> str:
        return f"{self.host}: {self.variable} ({self.role}): {self.reason}"


def load_spec(roles_dir: Path, role: str) -> dict[str, Any]:
    path = roles_dir / role / "meta" / "argument_specs.yml"
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    return dict((doc.get("argument_specs") or {}).get("main", {}).get("options") or {})


def _variable_of(message: str, names: list[str]) -> str:
    """The variable an Ansible validation message is about (longest name found in it)."""
    hits = [n for n in names if n in message]
    return max(hits, key=len) if hits else "(role arguments)"


def validate_host(intent: HostIntent, roles_dir: Path) -> list[SpecProblem]:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    problems: list[SpecProblem] = []
    for role in intent.roles:
        spec = load_spec(roles_dir, role)
        if not spec:
            continue
        # Values that only exist at run time (facts, vaulted data without its key) are left
        # to the role's own asserts; everything else is checked now.
        checkable = {k: v for k, v in spec.items() if k not in intent.unresolved}
        params = {k: intent.variables[k] for k in checkable if intent.has(k)}
        result = ArgumentSpecValidator(checkable).validate(params)
        for error in result.errors:
            message = str(error)
            problems.append(
                SpecProblem(intent.name, role, _variable_of(message, list(spec)), message)
            )
    return problems
