"""Read and validate the policy files under policies/.

Every problem names the file and the field, so `m7guard catalog validate` output tells the
author exactly what to fix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from m7guard.catalog.errors import CatalogError, Problem
from m7guard.catalog.model import (
    Catalog,
    Framework,
    Parameter,
    Profile,
    Requirement,
    Rule,
    Selector,
    area_name,
)
from m7guard.locate import shipped

POLICIES_ENV = "M7GUARD_POLICIES"
SCHEMA_KINDS = ("rule", "framework", "profile", "waivers")

_PARAM_TYPES: dict[str, Any] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer_list": lambda v: (
        isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    ),
    "string_list": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


def find_policies_dir(explicit: Path | str | None = None) -> Path:
    """The policies directory: explicit, $M7GUARD_POLICIES, ./policies, or the catalog m7guard
    ships (m7guard.locate: the source tree's, or the installed package's copy)."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(POLICIES_ENV):
        candidates.append(Path(os.environ[POLICIES_ENV]))
    else:
        candidates += [Path.cwd() / "policies", shipped("policies")]
    for candidate in candidates:
        if (candidate / "rules").is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise CatalogError(
        f"no policies directory found (tried {tried}); pass --policies DIR or set {POLICIES_ENV}"
    )


# The files that make up the catalog (not a waivers file kept beside them).
CATALOG_FILES = (
    "rules/*/*.yml",
    "frameworks/*.yml",
    "profiles/*.yml",
    "schema/*.json",
    "waiver_policy.yml",
)


def catalog_digest(root: Path) -> str:
    """`sha256:HEX` over the catalog's files under root: the SHA-256 of the lines
    `SHA256HEX  RELATIVE/PATH` (sha256sum's format) of every file of CATALOG_FILES, sorted by
    path. The same catalog gives the same digest wherever it lies; any edit changes it.
    By hand: cd policies && find rules frameworks profiles schema waiver_policy.yml -type f
    | LC_ALL=C sort | xargs sha256sum | sha256sum"""
    root = root.resolve()
    paths = sorted(
        {
            p.relative_to(root).as_posix()
            for pattern in CATALOG_FILES
            for p in root.glob(pattern)
            if p.is_file()
        },
        key=lambda rel: rel.encode(),
    )
    listing = "".join(
        f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}\n" for rel in paths
    )
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def display_path(path: Path, root: Path) -> str:
    """A path relative to the directory that holds policies/ (the project root)."""
    try:
        return path.resolve().relative_to(root.resolve().parent).as_posix()
    except ValueError:
        return path.as_posix()


# libyaml's safe loader when PyYAML was built with it: the same documents, read faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _plain(value: Any) -> Any:
    """YAML dates become ISO strings so that JSON Schema sees what the author wrote."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def read_yaml(path: Path, shown: str, problems: list[Problem]) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return _plain(yaml.load(fh, Loader=SAFE_LOADER))  # noqa: S506 (CSafeLoader or SafeLoader)
    except yaml.YAMLError as exc:
        problems.append(Problem(shown, "", f"not valid YAML: {exc}".replace("\n", " ")))
    except OSError as exc:
        problems.append(Problem(shown, "", f"cannot read: {exc.strerror}"))
    return None


@cache
def _schema_text(kind: str, schema_dir: str) -> str:
    return (Path(schema_dir) / f"{kind}.json").read_text(encoding="utf-8")


def schema_validator(kind: str, root: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(_schema_text(kind, str(root / "schema")))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def field_name(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_problems(kind: str, data: Any, shown: str, root: Path) -> list[Problem]:
    """Problems of one document against policies/schema/<kind>.json."""
    problems = []
    validator = schema_validator(kind, root)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = list(err.absolute_path)
        message = err.message
        if err.validator == "required":
            missing = next((r for r in err.validator_value if r not in (err.instance or {})), "")
            where.append(missing)
            message = "is required"
        elif err.validator == "enum":
            allowed = ", ".join(map(str, err.validator_value))
            message = f"{err.instance!r} is not one of: {allowed}"
        problems.append(Problem(shown, field_name(where) or "(document)", message))
    return problems


def _check_parameter_value(
    param: Parameter, value: Any, shown: str, where: str, problems: list[Problem]
) -> None:
    if not _PARAM_TYPES[param.type](value):
        problems.append(Problem(shown, where, f"{value!r} is not a valid {param.type}"))


def _read_document(
    kind: str, path: Path, root: Path, problems: list[Problem]
) -> tuple[str, Any] | None:
    """The shown path and data of a rule, framework or profile file that matches its schema.

    None when the file cannot be read or does not match; the problems found are added to
    problems, and a file whose name is not its id is reported but still returned.
    """
    shown = display_path(path, root)
    data = read_yaml(path, shown, problems)
    if data is None:
        return None
    found = schema_problems(kind, data, shown, root)
    problems += found
    if found:
        return None
    if path.stem != data["id"]:
        problems.append(
            Problem(shown, "id", f"{data['id']} must be in a file named {data['id']}.yml")
        )
    return shown, data


def _load_rule(path: Path, root: Path, problems: list[Problem]) -> Rule | None:
    read = _read_document("rule", path, root, problems)
    if read is None:
        return None
    shown, data = read
    params = {
        name: Parameter(name, spec["type"], spec["default"], spec["description"])
        for name, spec in data.get("parameters", {}).items()
    }
    for name, param in params.items():
        _check_parameter_value(param, param.default, shown, f"parameters.{name}.default", problems)
    applies = data.get("applies_to", {})
    return Rule(
        id=data["id"],
        title=data["title"],
        description=" ".join(data["description"].split()),
        rationale=" ".join(data["rationale"].split()),
        severity=data["severity"],
        references={k: tuple(v) for k, v in data["references"].items()},
        remediation_role=data["remediation"].get("role"),
        remediation_tags=tuple(data["remediation"].get("tags", ())),
        remediation_notes=" ".join(str(data["remediation"].get("notes", "")).split()),
        check=data["check"],
        area=path.parent.name,
        path=path.resolve(),
        groups=tuple(applies.get("groups", ["all"])),
        conditions=tuple(applies.get("conditions", [])),
        parameters=params,
        unmapped={k: " ".join(v.split()) for k, v in data.get("unmapped", {}).items()},
        scope=data.get("scope", "node"),
    )


def _load_framework(path: Path, root: Path, problems: list[Problem]) -> Framework | None:
    read = _read_document("framework", path, root, problems)
    if read is None:
        return None
    shown, data = read
    seen: set[str] = set()
    for i, req in enumerate(data["requirements"]):
        if req["id"] in seen:
            problems.append(
                Problem(shown, f"requirements[{i}].id", f"duplicate requirement id {req['id']}")
            )
        seen.add(req["id"])
    return Framework(
        id=data["id"],
        title=data["title"],
        version=str(data["version"]),
        source=data.get("source", ""),
        requirements=tuple(
            Requirement(r["id"], r["title"], r.get("evidence", "")) for r in data["requirements"]
        ),
        path=path.resolve(),
        expected_for_areas=tuple(area_name(a) for a in data.get("expected_for_areas", ())),
    )


def _load_profile(path: Path, root: Path, problems: list[Problem]) -> Profile | None:
    read = _read_document("profile", path, root, problems)
    if read is None:
        return None
    _, data = read

    def tup(value: list[str] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(value)

    selectors = tuple(
        Selector(
            all=bool(s.get("all", False)),
            ids=tup(s.get("ids")),
            areas=None if s.get("areas") is None else tuple(area_name(a) for a in s["areas"]),
            frameworks=tup(s.get("frameworks")),
            min_severity=s.get("min_severity"),
        )
        for s in data["select"]
    )
    return Profile(
        id=data["id"],
        title=data["title"],
        description=" ".join(data.get("description", "").split()),
        frameworks=tuple(data["frameworks"]),
        select=selectors,
        exclude=tuple(data.get("exclude", [])),
        parameters={k: dict(v) for k, v in data.get("parameters", {}).items()},
        path=path.resolve(),
    )


def _cross_check(catalog: Catalog, problems: list[Problem]) -> None:
    root = catalog.root
    for rule in catalog.rules.values():
        shown = display_path(rule.path, root)
        for fw_id, refs in rule.references.items():
            framework = catalog.frameworks.get(fw_id)
            if framework is None:
                problems.append(
                    Problem(
                        shown, f"references.{fw_id}", f"no framework file frameworks/{fw_id}.yml"
                    )
                )
                continue
            known = framework.requirement_ids()
            for i, ref in enumerate(refs):
                if ref not in known:
                    problems.append(
                        Problem(
                            shown,
                            f"references.{fw_id}[{i}]",
                            f"{ref!r} is not a requirement of {display_path(framework.path, root)}",
                        )
                    )
        for fw_id in rule.unmapped:
            if fw_id in rule.references:
                problems.append(Problem(shown, f"unmapped.{fw_id}",
                                        f"the rule references {fw_id}: it cannot be unmapped too"))
            elif fw_id not in catalog.frameworks:
                problems.append(Problem(shown, f"unmapped.{fw_id}",
                                        f"no framework file frameworks/{fw_id}.yml"))
        if rule.scope == "cluster" and "mapr_installed" not in rule.conditions:
            problems.append(Problem(
                shown, "applies_to.conditions",
                "a cluster rule reads a Data Fabric cluster: it needs the condition "
                "mapr_installed (nodes without Data Fabric are outside every cluster)"))
        for framework in catalog.frameworks.values():
            if (rule.area in framework.expected_for_areas
                    and framework.id not in rule.references and framework.id not in rule.unmapped):
                problems.append(Problem(
                    shown, "references",
                    f"{display_path(framework.path, root)} expects every rule of the area "
                    f"{rule.area!r} to reference it: add references.{framework.id}, or say why "
                    f"it cannot in unmapped.{framework.id}"))
    for profile in catalog.profiles.values():
        shown = display_path(profile.path, root)
        for fw_id in profile.frameworks:
            if fw_id not in catalog.frameworks:
                problems.append(Problem(shown, "frameworks", f"no framework {fw_id!r}"))
        areas = sorted({r.area for r in catalog.rules.values()})
        for i, selector in enumerate(profile.select):
            for j, area in enumerate(selector.areas or ()):
                if area not in areas:
                    problems.append(Problem(shown, f"select[{i}].areas[{j}]",
                                            f"no area {area!r} (areas: {', '.join(areas)})"))
            for j, rule_id in enumerate(selector.ids or ()):
                if rule_id not in catalog.rules:
                    problems.append(Problem(shown, f"select[{i}].ids[{j}]", f"no rule {rule_id}"))
        for i, rule_id in enumerate(profile.exclude):
            if rule_id not in catalog.rules:
                problems.append(Problem(shown, f"exclude[{i}]", f"no rule {rule_id}"))
        for rule_id, values in profile.parameters.items():
            rule = catalog.rules.get(rule_id)
            if rule is None:
                problems.append(Problem(shown, f"parameters.{rule_id}", f"no rule {rule_id}"))
                continue
            if not profile.selects(rule):
                problems.append(
                    Problem(shown, f"parameters.{rule_id}", "the profile does not select this rule")
                )
            for name, value in values.items():
                param = rule.parameters.get(name)
                if param is None:
                    problems.append(
                        Problem(
                            shown,
                            f"parameters.{rule_id}.{name}",
                            f"{rule_id} has no such parameter",
                        )
                    )
                else:
                    _check_parameter_value(
                        param, value, shown, f"parameters.{rule_id}.{name}", problems
                    )
        if not catalog.rules_for(profile):
            problems.append(Problem(shown, "select", "selects no rule"))


def read_catalog(root: Path) -> tuple[Catalog, list[Problem]]:
    """Load every policy file under root; return the catalog and all problems found."""
    root = root.resolve()
    problems: list[Problem] = []
    rules: dict[str, Rule] = {}
    for path in sorted((root / "rules").glob("*/*.yml")):
        rule = _load_rule(path, root, problems)
        if rule is None:
            continue
        if rule.id in rules:
            problems.append(
                Problem(
                    display_path(path, root),
                    "id",
                    f"duplicate rule id {rule.id} "
                    f"(also in {display_path(rules[rule.id].path, root)})",
                )
            )
            continue
        rules[rule.id] = rule
    stray = sorted(p for p in (root / "rules").glob("*.yml"))
    for path in stray:
        problems.append(
            Problem(display_path(path, root), "", "rule files belong in rules/<area>/RULE-ID.yml")
        )
    frameworks = {}
    for path in sorted((root / "frameworks").glob("*.yml")):
        fw = _load_framework(path, root, problems)
        if fw is not None:
            frameworks[fw.id] = fw
    profiles = {}
    for path in sorted((root / "profiles").glob("*.yml")):
        profile = _load_profile(path, root, problems)
        if profile is not None:
            profiles[profile.id] = profile
    catalog = Catalog(root=root, rules=rules, frameworks=frameworks, profiles=profiles)
    _cross_check(catalog, problems)
    return catalog, problems


def load_catalog(root: Path | str | None = None) -> Catalog:
    """The catalog under root (see find_policies_dir); CatalogError if any file is invalid."""
    catalog, problems = read_catalog(find_policies_dir(root))
    if problems:
        raise CatalogError(problems)
    return catalog
