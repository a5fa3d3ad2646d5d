"""The services a host should run, computed on the controller from the inventory.

zero_trust_network writes the zones and services it applied into a declaration on the node
(/etc/m7guard/network.json). A node can write anything there, so NET-004/007/008 judge
against what the inventory asks of the host: the role's own planning function
(plugins/modules/zero_trust_network_plan.py, `planned_services`) applied
to the host's inventory variables, the role's defaults for those it does not set, and the
role's service catalog. The node's declaration is kept as evidence, with any service it adds.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from m7guard.checks.support.sizing import ROLES_ENV, plugins_dir, roles_dir
from m7guard.checks.support.verdict import EvidenceError
from m7guard.locate import import_file

ROLE = "zero_trust_network"
VARIABLES = ("group_services", "services", "service_zones", "custom_services")


@cache
def _plan_module() -> ModuleType:
    path = plugins_dir() / "modules" / "zero_trust_network_plan.py"
    if not path.is_file():
        raise EvidenceError(f"{path} not found: the services a host should run cannot be "
                            f"computed (m7guard's roles are missing; set {ROLES_ENV})")
    try:
        return import_file("_m7guard_zero_trust_network_plan", path)
    except ImportError as exc:
        raise EvidenceError(str(exc)) from exc


@cache
def _role_file(relative: str) -> dict[str, Any]:
    path = roles_dir() / ROLE / relative
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvidenceError(f"cannot read {path}: {exc}") from None


def _render(value: Any, variables: dict[str, Any], env: SandboxedEnvironment) -> Any:
    """A value with its Jinja expressions rendered against the host's variables; a rendered
    string that is a Python literal (a list, a mapping) becomes that value, as Ansible's
    native templating gives it."""
    if isinstance(value, dict):
        return {k: _render(v, variables, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables, env) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    text = env.from_string(value).render(**variables).strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def render(value: Any, variables: dict[str, Any], name: str) -> Any:
    """An inventory value with its Jinja expressions rendered against the host's variables,
    as Ansible would give it to a role; EvidenceError naming the variable otherwise."""
    try:
        return _render(value, variables, SandboxedEnvironment(undefined=StrictUndefined))
    except TemplateError as exc:
        raise EvidenceError(f"{name} cannot be rendered on the controller: {exc}") from None


def _variable(variables: dict[str, Any], name: str) -> Any:
    full = f"{ROLE}_{name}"
    value = variables[full] if full in variables else _role_file("defaults/main.yml")[full]
    try:
        return _render(value, variables, SandboxedEnvironment(undefined=StrictUndefined))
    except TemplateError as exc:
        raise EvidenceError(f"{full} cannot be rendered on the controller: {exc}") from None


def inventory_services(variables: dict[str, Any],
                       zones: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """name -> {ports, protocol, zones, peers}: what zero_trust_network would declare for a
    host with these inventory variables and zones. EvidenceError when the role would refuse
    them (the message names the variable) or they cannot be evaluated here."""
    plan = _plan_module()
    role_vars = _role_file("vars/main.yml")
    params = {
        "zones": zones,
        "required_zones": role_vars["__zero_trust_network_required_zones"],
        "catalog": role_vars["__zero_trust_network_catalog"],
        "host_groups": list(variables.get("group_names") or []),
        **{name: _variable(variables, name) for name in VARIABLES},
    }
    try:
        return plan.planned_services(params)
    except plan.PlanError as exc:
        raise EvidenceError(f"the inventory's network variables are invalid: {exc}") from None
