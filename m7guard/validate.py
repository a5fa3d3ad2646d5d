"""`m7guard catalog validate`: every policy file, the rules tied one to one to checks (and to
preflight's checks), the remediation roles and the waivers. It sits above the catalog, the checks
and preflight, which it reads together."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from m7guard.catalog.errors import Problem
from m7guard.catalog.loader import display_path, find_policies_dir, read_catalog
from m7guard.catalog.model import Catalog
from m7guard.catalog.roles import find_roles_dir, remediation_problems
from m7guard.catalog.waivers import max_days, read_waivers
from m7guard.checks import CHECKS_DIR, is_check_module, rule_of
from m7guard.locate import import_file

CHECK_PREFIX = "m7guard/checks/"


@dataclass(frozen=True)
class CheckRef:
    """A check function found in a checks directory and the rule it declares."""

    ref: str
    rule_id: str
    file: Path
    function: str


def _import(path: Path, checks_dir: Path) -> ModuleType:
    if checks_dir.resolve() == CHECKS_DIR:
        return importlib.import_module(f"m7guard.checks.{path.stem}")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return import_file(f"_m7guard_checks_{digest}_{path.stem}", path)


def discover_checks(checks_dir: Path = CHECKS_DIR) -> tuple[list[CheckRef], list[Problem]]:
    """Every @rule check in the modules of checks_dir (helpers and conftest excluded)."""
    found: list[CheckRef] = []
    problems: list[Problem] = []
    for path in sorted(checks_dir.glob("*.py")):
        if not is_check_module(path):
            continue
        shown = f"{CHECK_PREFIX}{path.name}"
        try:
            module = _import(path, checks_dir)
        except Exception as exc:  # a broken module is a validation problem, not a crash
            problems.append(Problem(shown, "", f"cannot import: {type(exc).__name__}: {exc}"))
            continue
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            rule_id = rule_of(fn)
            if rule_id is not None:
                found.append(CheckRef(f"{shown}::{name}", rule_id, path, name))
            elif name.startswith("test_"):
                problems.append(
                    Problem(shown, name, 'a check without a rule: decorate it with @rule("ID")')
                )
    return found, problems


def discover_preflight_checks() -> list[CheckRef]:
    """The PRE-* checks of m7guard preflight, which read the intended configuration."""
    from m7guard.preflight import checks as pre

    path = Path(pre.__file__)
    return [
        CheckRef(f"m7guard/preflight/{path.name}::{fn.__name__}", rule_of(fn) or "", path,
                 fn.__name__)
        for fn in pre.all_checks()
    ]


def check_problems(catalog: Catalog, checks: Iterable[CheckRef]) -> list[Problem]:
    """Rules without a check, checks without a rule, and mismatched pairs."""
    problems: list[Problem] = []
    by_ref = {c.ref: c for c in checks}
    by_rule: dict[str, list[CheckRef]] = {}
    for check in by_ref.values():
        by_rule.setdefault(check.rule_id, []).append(check)
    for rule_id, refs in sorted(by_rule.items()):
        shown_refs = ", ".join(c.ref for c in refs)
        if rule_id not in catalog.rules:
            for c in refs:
                problems.append(
                    Problem(
                        c.ref.split("::")[0],
                        c.function,
                        f"a check without a rule: {rule_id} is not in policies/rules/",
                    )
                )
        elif len(refs) > 1:
            problems.append(
                Problem(
                    display_path(catalog.rules[rule_id].path, catalog.root),
                    "check",
                    f"{rule_id} has more than one check: {shown_refs}",
                )
            )
    for rule in catalog.rules.values():
        shown = display_path(rule.path, catalog.root)
        check = by_ref.get(rule.check)
        if check is None:
            problems.append(
                Problem(shown, "check", f"a rule without a check: {rule.check} does not exist")
            )
        elif check.rule_id != rule.id:
            problems.append(
                Problem(shown, "check", f"{rule.check} is tied to {check.rule_id}, not {rule.id}")
            )
    return problems


def validate(
    root: Path | str | None = None,
    checks_dir: Path = CHECKS_DIR,
    waiver_files: Iterable[Path] = (),
    roles_dir: Path | None = None,
) -> tuple[Catalog, list[Problem]]:
    """Validate the whole catalog: files against their schemas, cross references, checks,
    the remediation of each rule (its role exists in roles_dir, default the roles/ next to
    the policies or the roles m7guard ships, and a task carries each of its tags), the shipped
    waivers files (policies/waivers*.yml) and any extra waivers files."""
    policies = find_policies_dir(root)
    catalog, problems = read_catalog(policies)
    problems += remediation_problems(catalog, find_roles_dir(policies, roles_dir))
    checks, found = discover_checks(checks_dir)
    if checks_dir.resolve() == CHECKS_DIR:
        checks += discover_preflight_checks()
    problems += found
    problems += check_problems(catalog, checks)
    problems += max_days(catalog)[1]
    files = sorted(policies.glob("waivers*.yml")) + [Path(p) for p in waiver_files]
    for path in files:
        problems += read_waivers(path, catalog)[1]
    return catalog, sorted(set(problems))
