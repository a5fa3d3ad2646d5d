"""Checks: real testinfra tests, one module per rule area, each tied to one rule id.

A check is a test function decorated with `@rule("AREA-NNN")`. It receives testinfra's
`host` fixture and m7guard's fixtures (`params`, `evidence`, `sysctl`, `host_snapshot`,
`m7_rule`) from m7guard/checks/conftest.py, so both `m7guard audit` and a plain
`pytest --hosts=ansible://GROUP --ansible-inventory=INV m7guard/checks` run them.

Adding a rule area means adding its rule files under policies/rules/<area>/ and one module
m7guard/checks/<area>.py here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

RULE_ATTR = "__m7guard_rule__"
SYSCTL_ATTR = "__m7guard_sysctl__"
CHECKS_DIR = Path(__file__).resolve().parent
NOT_CHECK_MODULES = frozenset({"__init__.py", "conftest.py"})

F = TypeVar("F", bound=Callable[..., Any])


def rule(rule_id: str, *, sysctl: Sequence[str] = ()) -> Callable[[F], F]:
    """Tie a check to the rule it verifies.

    `sysctl` names the kernel keys the check reads through the `sysctl` fixture; the audit
    reads them on every host in one round trip before the checks run.
    """

    def decorate(fn: F) -> F:
        setattr(fn, RULE_ATTR, rule_id)
        setattr(fn, SYSCTL_ATTR, tuple(sysctl))
        return fn

    return decorate


def rule_of(obj: object) -> str | None:
    """The rule id a check function verifies, or None for anything else."""
    value = getattr(obj, RULE_ATTR, None)
    return value if isinstance(value, str) else None


def sysctl_keys_of(obj: object) -> tuple[str, ...]:
    """The kernel keys a check declared with @rule(..., sysctl=[...])."""
    return tuple(getattr(obj, SYSCTL_ATTR, ()))


def is_check_module(path: Path) -> bool:
    """Whether a file directly in a checks directory holds checks (not helpers)."""
    return (
        path.suffix == ".py"
        and path.name not in NOT_CHECK_MODULES
        and not path.name.startswith("_")
    )
