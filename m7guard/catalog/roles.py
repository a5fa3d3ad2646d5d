"""The rule -> role -> tag link: what the Ansible roles' tasks say about the rules they enforce.

A rule's remediation names a role (roles/<role>) and tags; `m7guard catalog validate` checks
that the role exists and that each tag is on at least one task of it, so that
`ansible-playbook playbooks/site.yml --tags RULE-ID` really runs something.

The naming convention of the roles (ansible-lockdown's): a task, block or task-file import
that carries rule ids in its own tags names each of them (a run may be written
`KERN-001 .. KERN-016`), and every rule id a task names is among its tags, its own or those
inherited from the block or import around it. `role_task_problems` reports the tasks that
break it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from m7guard.catalog.errors import Problem
from m7guard.catalog.model import Catalog
from m7guard.locate import shipped

RULE_ID = re.compile(r"^[A-Z]{2,5}-[0-9]{3}$")
# KERN-001, or a run: KERN-001 .. KERN-016 (also KERN-001..016)
_NAMED = re.compile(r"\b([A-Z]{2,5})-([0-9]{3})(?:\s*\.\.\s*(?:([A-Z]{2,5})-)?([0-9]{3}))?\b")
_TASK_FILE_KEYS = (
    "ansible.builtin.import_tasks",
    "import_tasks",
    "ansible.builtin.include_tasks",
    "include_tasks",
)
_BLOCK_KEYS = ("block", "rescue", "always")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as Ansible writes it: unknown tags (!vault, !unsafe) read as plain values. On
    libyaml's parser where PyYAML has it (every audit reads the roles' task files)."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _any_tag)


@dataclass(frozen=True)
class RoleTask:
    """A task, block or task-file import/include of a role, with its tags."""

    role: str
    file: Path
    name: str
    tags: tuple[str, ...]
    inherited: tuple[str, ...]

    @property
    def rule_tags(self) -> set[str]:
        return {t for t in self.tags if RULE_ID.match(t)}

    @property
    def effective_rule_tags(self) -> set[str]:
        return {t for t in (*self.tags, *self.inherited) if RULE_ID.match(t)}


def tags_of(value: Any) -> tuple[str, ...]:
    """A `tags:` value as a tuple: a list, or a comma separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t) for t in value)
    return (str(value),)


def named_rule_ids(name: str) -> set[str]:
    """The rule ids a task name mentions, runs (`KERN-001 .. KERN-016`) expanded."""
    found: set[str] = set()
    for prefix, first, other_prefix, last in _NAMED.findall(name):
        if last and other_prefix in ("", prefix):
            lo, hi = int(first), int(last)
            found |= {f"{prefix}-{n:03d}" for n in range(lo, hi + 1)} if lo <= hi else set()
        else:
            found.add(f"{prefix}-{first}")
            if last:
                found.add(f"{other_prefix}-{last}")
    return found


def _read(path: Path) -> list[Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except (OSError, yaml.YAMLError):
        return []
    return data if isinstance(data, list) else []


def _walk(
    role: str,
    tasks: Iterable[Any],
    path: Path,
    inherited: tuple[str, ...],
    seen: set[Path],
) -> Iterator[RoleTask]:
    for task in tasks:
        if not isinstance(task, dict):
            continue
        own = tags_of(task.get("tags"))
        yield RoleTask(role, path, str(task.get("name", "")), own, inherited)
        below = (*inherited, *own)
        for key in _BLOCK_KEYS:
            if isinstance(task.get(key), list):
                yield from _walk(role, task[key], path, below, seen)
        for key in _TASK_FILE_KEYS:
            if key not in task:
                continue
            spec = task[key]
            target = spec if isinstance(spec, str) else (spec or {}).get("file", "")
            applied = (
                tags_of(((spec or {}).get("apply") or {}).get("tags"))
                if isinstance(spec, dict)
                else ()
            )
            child = (path.parent / str(target)).resolve()
            if "{{" not in str(target) and child.is_file() and child not in seen:
                seen.add(child)
                yield from _walk(role, _read(child), child, (*below, *applied), seen)


def role_tasks(role_dir: Path) -> list[RoleTask]:
    """Every task of a role: from tasks/main.yml through its static imports and includes
    (their tags inherited), then the task files main.yml does not reach (entry points for
    include_role tasks_from), each on its own."""
    tasks_dir = role_dir / "tasks"
    seen: set[Path] = set()
    out: list[RoleTask] = []
    main = (tasks_dir / "main.yml").resolve()
    if main.is_file():
        seen.add(main)
        out += _walk(role_dir.name, _read(main), main, (), seen)
    for path in sorted(tasks_dir.rglob("*.yml")):
        path = path.resolve()
        if path not in seen:
            seen.add(path)
            out += _walk(role_dir.name, _read(path), path, (), seen)
    return out


def find_roles_dir(policies: Path, explicit: Path | None = None) -> Path | None:
    """roles/ next to the policies directory, else the roles m7guard ships (m7guard.locate)."""
    for candidate in (explicit, policies.parent / "roles", shipped("roles")):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def remediation_problems(catalog: Catalog, roles_dir: Path | None) -> list[Problem]:
    """Rules whose remediation role does not exist, or whose tags no task of it carries."""
    from m7guard.catalog.loader import display_path

    if roles_dir is None:
        return [Problem("roles/", "", "not found: pass --roles DIR to check the remediations")]
    problems: list[Problem] = []
    tags_by_role: dict[str, set[str]] = {}
    for rule in sorted(catalog.rules.values(), key=lambda r: r.id):
        if rule.remediation_role is None:
            continue
        shown = display_path(rule.path, catalog.root)
        role_dir = roles_dir / rule.remediation_role
        if not (role_dir / "tasks").is_dir():
            problems.append(
                Problem(
                    shown,
                    "remediation.role",
                    f"no role {rule.remediation_role!r} in {roles_dir} (no tasks/ directory)",
                )
            )
            continue
        if rule.remediation_role not in tags_by_role:
            tags_by_role[rule.remediation_role] = {
                t for task in role_tasks(role_dir) for t in task.tags
            }
        for tag in rule.remediation_tags:
            if tag not in tags_by_role[rule.remediation_role]:
                problems.append(
                    Problem(
                        shown,
                        "remediation.tags",
                        f"no task of role {rule.remediation_role} carries the tag {tag}: "
                        f"--tags {tag} would run nothing",
                    )
                )
    return problems


def role_task_problems(roles_dir: Path) -> list[Problem]:
    """Tasks that break the naming convention: a rule id in their own tags that their name
    does not mention, or a rule id in their name that their tags do not carry."""
    problems: list[Problem] = []
    roles_dir = roles_dir.resolve()
    for role_dir in sorted(p for p in roles_dir.iterdir() if (p / "tasks").is_dir()):
        for task in role_tasks(role_dir):
            shown = str(task.file.relative_to(roles_dir.parent))
            named = named_rule_ids(task.name)
            unnamed = sorted(task.rule_tags - named)
            untagged = sorted(named - task.effective_rule_tags)
            if unnamed:
                problems.append(
                    Problem(shown, task.name, f"tagged {', '.join(unnamed)} but does not name it")
                )
            if untagged:
                problems.append(
                    Problem(shown, task.name, f"names {', '.join(untagged)} but is not tagged so")
                )
    return problems
