"""Errors of the rule catalog."""

from __future__ import annotations

from dataclasses import dataclass

from m7guard.errors import M7guardError


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a policy file: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class CatalogError(M7guardError):
    """The catalog (rules, frameworks, profiles, waivers) is invalid or cannot be read."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = sorted(problems)
        lines = [str(p) for p in self.problems]
        head = f"{len(lines)} problem(s) in the policy files" if len(lines) > 1 else lines[0]
        detail = "\n  ".join(lines) if len(lines) > 1 else ""
        super().__init__(f"{head}\n  {detail}" if detail else head)


class UnknownRuleError(CatalogError):
    """A rule id that the catalog does not have."""


class UnknownProfileError(CatalogError):
    """A profile name that policies/profiles/ does not have."""
