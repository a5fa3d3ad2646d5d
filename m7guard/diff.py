"""`m7guard diff OLD.json NEW.json`: what changed between two audits, newly failing first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from m7guard.errors import M7guardError
from m7guard.results import FAILING_STATES, Results


@dataclass(frozen=True)
class Change:
    host: str
    rule: str
    old: str
    new: str
    severity: str
    title: str
    message: str


@dataclass
class Diff:
    newly_failing: list[Change] = field(default_factory=list)
    newly_passing: list[Change] = field(default_factory=list)
    other_changes: list[Change] = field(default_factory=list)
    added_rules: list[tuple[str, str]] = field(default_factory=list)
    removed_rules: list[tuple[str, str]] = field(default_factory=list)
    added_hosts: list[str] = field(default_factory=list)
    removed_hosts: list[str] = field(default_factory=list)
    still_failing: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.newly_failing
            or self.newly_passing
            or self.other_changes
            or self.added_rules
            or self.removed_rules
            or self.added_hosts
            or self.removed_hosts
        )


def compare(old: Results, new: Results) -> Diff:
    diff = Diff()
    old_cells = {(r["host"], r["rule"]): r for r in old.results}
    new_cells = {(r["host"], r["rule"]): r for r in new.results}
    rules = new.rules
    for key in sorted(old_cells.keys() & new_cells.keys(), key=lambda k: (k[1], k[0])):
        before, after = old_cells[key]["state"], new_cells[key]["state"]
        rule = rules[key[1]]
        change = Change(
            key[0],
            key[1],
            before,
            after,
            rule["severity"],
            rule["title"],
            new_cells[key]["message"],
        )
        if before in FAILING_STATES and after in FAILING_STATES:
            diff.still_failing += 1
        if before == after:
            continue
        if after in FAILING_STATES and before not in FAILING_STATES:
            diff.newly_failing.append(change)
        elif before in FAILING_STATES and after == "pass":
            diff.newly_passing.append(change)
        else:
            diff.other_changes.append(change)
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    diff.newly_failing.sort(key=lambda c: (rank.get(c.severity, 9), c.rule, c.host))
    diff.added_rules = [(r, rules[r]["title"]) for r in sorted(new.rules.keys() - old.rules.keys())]
    diff.removed_rules = [
        (r, old.rules[r]["title"]) for r in sorted(old.rules.keys() - new.rules.keys())
    ]
    diff.added_hosts = sorted(set(new.hosts) - set(old.hosts))
    diff.removed_hosts = sorted(set(old.hosts) - set(new.hosts))
    return diff


def _sections(diff: Diff) -> list[tuple[str, list[str], list[list[str]]]]:
    def rows(changes: list[Change]) -> list[list[str]]:
        return [
            [c.host, c.rule, c.severity, f"{c.old} -> {c.new}", c.message or c.title]
            for c in changes
        ]

    head = ["host", "rule", "severity", "state", "detail"]
    return [
        ("Newly failing", head, rows(diff.newly_failing)),
        ("Newly passing", head, rows(diff.newly_passing)),
        ("Other state changes", head, rows(diff.other_changes)),
        ("Added rules", ["rule", "title"], [list(r) for r in diff.added_rules]),
        ("Removed rules", ["rule", "title"], [list(r) for r in diff.removed_rules]),
        ("Added hosts", ["host"], [[h] for h in diff.added_hosts]),
        ("Removed hosts", ["host"], [[h] for h in diff.removed_hosts]),
    ]


def summary_line(diff: Diff) -> str:
    return (
        f"{len(diff.newly_failing)} newly failing, {len(diff.newly_passing)} newly passing, "
        f"{len(diff.other_changes)} other changes, {len(diff.added_rules)} rules added, "
        f"{len(diff.removed_rules)} removed, {len(diff.added_hosts)} hosts added, "
        f"{len(diff.removed_hosts)} removed, {diff.still_failing} still failing"
    )


def render_text(diff: Diff) -> str:
    out = [summary_line(diff)]
    for title, _, rows in _sections(diff):
        if rows:
            out.append(f"\n{title} ({len(rows)}):")
            out += ["  " + "  ".join(row) for row in rows]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(diff: Diff) -> str:
    icon = ":x:" if diff.newly_failing else ":white_check_mark:"
    out = [f"### {icon} m7guard audit diff", "", summary_line(diff)]
    for title, head, rows in _sections(diff):
        if not rows:
            continue
        out += [
            "",
            f"#### {title} ({len(rows)})",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


@click.command(name="diff")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text")
@click.pass_context
def diff_command(ctx: click.Context, old: Path, new: Path, fmt: str) -> None:
    """Compare two results files: newly failing first, then newly passing, other changes,
    added and removed rules and hosts. Markdown suits a pull-request comment."""
    try:
        result = compare(Results.load(old), Results.load(new))
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(render_markdown(result) if fmt == "markdown" else render_text(result), nl=False)
