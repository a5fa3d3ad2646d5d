"""`m7guard catalog`: validate, list, show and coverage of the rule catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from m7guard.catalog.errors import CatalogError
from m7guard.catalog.loader import display_path, load_catalog
from m7guard.catalog.model import Catalog, Rule
from m7guard.catalog.validate import validate as validate_catalog
from m7guard.checks import CHECKS_DIR

policies_option = click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Policies directory (default: $M7GUARD_POLICIES, ./policies, or the source tree's).",
)


def _console(wrap: bool = True) -> Console:
    return Console(highlight=False, soft_wrap=not wrap)


@click.group()
def catalog() -> None:
    """Inspect and validate the rule catalog (policies/)."""


@catalog.command()
@policies_option
@click.option(
    "--waivers",
    "waiver_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also validate this waivers file (repeatable).",
)
@click.option(
    "--checks",
    "checks_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Directory of check modules (default: the installed m7guard/checks).",
)
@click.option(
    "--roles",
    "roles_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Ansible roles directory (default: roles/ next to the policies, else the source tree's).",
)
@click.pass_context
def validate(
    ctx: click.Context,
    policies: Path | None,
    waiver_files: tuple[Path, ...],
    checks_dir: Path | None,
    roles_dir: Path | None,
) -> None:
    """Check every policy file, the one-to-one tie between rules and checks, and each rule's
    remediation: its role exists and a task of it carries each remediation tag.

    Exits 0 when valid, 1 with one line per problem (file: field: message) otherwise.
    """
    cat, problems = validate_catalog(
        policies,
        checks_dir=checks_dir or CHECKS_DIR,
        waiver_files=waiver_files,
        roles_dir=roles_dir,
    )
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        click.echo(f"catalog invalid: {len(problems)} problem(s)", err=True)
        ctx.exit(1)
    click.echo(
        f"catalog valid: {len(cat.rules)} rules, {len(cat.frameworks)} frameworks, "
        f"{len(cat.profiles)} profiles"
    )


def _rules(cat: Catalog, profile: str | None, area: str | None) -> list[Rule]:
    rules = cat.rules_for(cat.profile(profile) if profile else None)
    return [r for r in rules if area is None or r.area == area]


@catalog.command(name="list")
@policies_option
@click.option("--profile", default=None, help="Only the rules this profile selects.")
@click.option("--area", default=None, help="Only the rules of this area (e.g. kernel).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_rules(policies: Path | None, profile: str | None, area: str | None, fmt: str) -> None:
    """List the rules of the catalog."""
    cat = load_catalog(policies)
    rules = _rules(cat, profile, area)
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "title": r.title,
                        "severity": r.severity,
                        "area": r.area,
                        "frameworks": sorted(r.references),
                    }
                    for r in rules
                ],
                indent=2,
            )
        )
        return
    table = Table(title=f"{len(rules)} rules")
    for col in ("id", "severity", "area", "title", "frameworks"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.id, r.severity, r.area, r.title, ", ".join(sorted(r.references)))
    _console().print(table)


def rule_dict(cat: Catalog, rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        **rule.described(),
        "applies_to": {"groups": list(rule.groups), "conditions": list(rule.conditions)},
        "parameters": {
            n: {"type": p.type, "default": p.default, "description": p.description}
            for n, p in rule.parameters.items()
        },
        "file": display_path(rule.path, cat.root),
    }


@catalog.command()
@policies_option
@click.argument("rule_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(policies: Path | None, rule_id: str, fmt: str) -> None:
    """Show one rule: what, why, references, remediation, check, parameters."""
    cat = load_catalog(policies)
    data = rule_dict(cat, cat.rule(rule_id.upper()))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    console = _console(wrap=False)
    console.print(f"[bold]{data['id']}[/bold]  {data['title']}  ({data['severity']})")
    console.print(f"file: {data['file']}")
    console.print(f"\n[bold]What[/bold]\n{data['description']}")
    console.print(f"\n[bold]Why[/bold]\n{data['rationale']}")
    console.print("\n[bold]References[/bold]")
    for fw, ids in data["references"].items():
        console.print(f"  {fw}: {', '.join(ids)}")
    console.print(
        f"\n[bold]Remediation[/bold]  role {data['remediation']['role'] or 'none (preflight)'}: "
        f"{data['remediation']['command']}"
    )
    console.print(f"[bold]Check[/bold]  {data['check']}")
    applies = data["applies_to"]
    conds = f"; conditions: {', '.join(applies['conditions'])}" if applies["conditions"] else ""
    console.print(f"[bold]Applies to[/bold]  groups: {', '.join(applies['groups'])}{conds}")
    if data["parameters"]:
        console.print("[bold]Parameters[/bold]")
        for name, p in data["parameters"].items():
            console.print(f"  {name} ({p['type']}) = {p['default']!r}: {p['description']}")


@catalog.command()
@policies_option
@click.option(
    "--framework", "framework_id", required=True, help="soc2, hipaa, pci_dss_4, nist_800_53"
)
@click.option("--profile", default=None, help="Count only the rules this profile selects.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table")
def coverage(policies: Path | None, framework_id: str, profile: str | None, fmt: str) -> None:
    """Which requirements of a framework the rules automate, and which need manual evidence."""
    cat = load_catalog(policies)
    if framework_id not in cat.frameworks:
        raise CatalogError(
            f"unknown framework {framework_id!r}; policies/frameworks/ has: "
            + ", ".join(sorted(cat.frameworks))
        )
    rows = cat.coverage(framework_id, _rules(cat, profile, None))
    automated = sum(1 for r in rows if r.automated)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "framework": framework_id,
                    "automated": automated,
                    "manual": len(rows) - automated,
                    "requirements": [
                        {
                            "id": r.requirement.id,
                            "title": r.requirement.title,
                            "status": "automated" if r.automated else "manual",
                            "rules": list(r.rules),
                            "evidence": r.requirement.evidence,
                        }
                        for r in rows
                    ],
                },
                indent=2,
            )
        )
        return
    title = (
        f"{cat.frameworks[framework_id].title}: {automated} of {len(rows)} requirements automated, "
        f"{len(rows) - automated} need manual evidence"
    )
    if fmt == "markdown":
        click.echo(f"## {title}\n\n| requirement | title | status | rules |\n|---|---|---|---|")
        for r in rows:
            status = "automated" if r.automated else "manual (evidence needed)"
            click.echo(
                f"| {r.requirement.id} | {r.requirement.title} | {status} | {', '.join(r.rules)} |"
            )
        return
    table = Table(title=title)
    for col in ("requirement", "title", "status", "rules"):
        table.add_column(col)
    for r in rows:
        status = "automated" if r.automated else "[yellow]manual: evidence needed[/yellow]"
        table.add_row(r.requirement.id, r.requirement.title, status, ", ".join(r.rules))
    _console().print(table)
