"""`m7guard catalog`: validate, list, show and coverage of the rule catalog."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from m7guard.catalog.errors import CatalogError
from m7guard.catalog.loader import display_path, load_catalog
from m7guard.catalog.model import FRAMEWORK_IDS, Catalog, Rule, area_name
from m7guard.catalog.proof import (
    find_tests_dir,
    load_proofs,
    markdown,
    matrix,
    proof_problems,
)
from m7guard.checks import CHECKS_DIR
from m7guard.validate import validate as validate_catalog

policies_option = click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Policies directory (default: $M7GUARD_POLICIES, ./policies, or the catalog m7guard "
    "ships: the checkout's, or the installed package's).",
)


tests_option = click.option(
    "--tests",
    "tests_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="The test suite holding proofs.py (default: tests/ beside the policies).",
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
    help="Ansible roles directory (default: roles/ next to the policies, else the roles "
    "m7guard ships).",
)
@tests_option
@click.option("--no-proof", is_flag=True,
              help="Validate without the proofs (said in the output): for a catalog whose "
                   "test suite is elsewhere.")
@click.pass_context
def validate(
    ctx: click.Context,
    policies: Path | None,
    waiver_files: tuple[Path, ...],
    checks_dir: Path | None,
    roles_dir: Path | None,
    tests_dir: Path | None,
    no_proof: bool,
) -> None:
    """Check every policy file, the one-to-one tie between rules and checks, each rule's
    remediation (its role exists and a task of it carries each remediation tag), and each
    rule's proofs: a test that fails its check on a broken host and one that passes it on a
    hardened host (tests/proofs.py; `m7guard catalog proof` shows them).

    Exits 0 when valid, 1 with one line per problem (file: field: message) otherwise.
    """
    cat, problems = validate_catalog(
        policies,
        checks_dir=checks_dir or CHECKS_DIR,
        waiver_files=waiver_files,
        roles_dir=roles_dir,
    )
    proofs = "proofs not checked (--no-proof)"
    if not no_proof:
        try:
            tests = find_tests_dir(cat.root, tests_dir)
            found = proof_problems(cat, load_proofs(tests), tests)
            problems = sorted(set(problems) | set(found))
            proofs = "every rule has a fail-proof and a pass-proof"
        except CatalogError as exc:
            problems = sorted(set(problems) | set(exc.problems))
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        click.echo(f"catalog invalid: {len(problems)} problem(s)", err=True)
        ctx.exit(1)
    click.echo(
        f"catalog valid: {len(cat.rules)} rules, {len(cat.frameworks)} frameworks, "
        f"{len(cat.profiles)} profiles; {proofs}"
    )


@catalog.command()
@policies_option
@tests_option
@click.option("--rule", "rule_id", default=None, help="Only this rule's proofs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table")
@click.pass_context
def proof(ctx: click.Context, policies: Path | None, tests_dir: Path | None,
          rule_id: str | None, fmt: str) -> None:
    """The proof matrix: for each rule, the tests that show its check failing on a host
    broken for it (fail-proofs: the mutation battery's breaks of hardened lab nodes, and
    unit tests) and passing on a hardened one (pass-proofs).

    Exits 1 when a rule has no fail-proof or no pass-proof, or a proof names a test or rule
    that does not exist.
    """
    cat = load_catalog(policies)
    tests = find_tests_dir(cat.root, tests_dir)
    proofs = load_proofs(tests)
    problems = proof_problems(cat, proofs, tests)
    rows = matrix(cat, proofs)
    if rule_id is not None:
        rows = [row for row in rows if row.rule == cat.rule(rule_id.upper()).id]
    if fmt == "json":
        click.echo(json.dumps({
            "rules": len(rows),
            "proven": sum(row.proven for row in rows),
            "matrix": [{"rule": row.rule, "title": row.title,
                        "fail": [asdict(p) for p in row.fail],
                        "pass": [asdict(p) for p in row.passing]} for row in rows],
            "problems": [str(p) for p in problems],
        }, indent=2))
    elif fmt == "markdown":
        click.echo(markdown(rows), nl=False)
    else:
        table = Table(title=f"proof matrix: {sum(r.proven for r in rows)} of {len(rows)} "
                            "rules proven")
        for col in ("rule", "fail-proofs", "where", "pass-proofs"):
            table.add_column(col)
        for row in rows:
            where = ", ".join(sorted({p.where for p in row.fail}))
            table.add_row(row.rule, str(len(row.fail)) if row.fail else "[red]none[/red]",
                          where, str(len(row.passing)) if row.passing else "[red]none[/red]")
        _console().print(table)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        ctx.exit(1)


def _rules(cat: Catalog, profile: str | None, area: str | None) -> list[Rule]:
    rules = cat.rules_for(cat.profile(profile) if profile else None)
    if area is None:
        return rules
    areas = sorted({r.area for r in cat.rules.values()})
    if area_name(area) not in areas:
        raise click.BadParameter(f"no area {area!r} (areas: {', '.join(areas)})",
                                 param_hint="'--area'")
    return [r for r in rules if r.area == area_name(area)]


@catalog.command(name="list")
@policies_option
@click.option("--profile", default=None, help="Only the rules this profile selects.")
@click.option(
    "--area",
    default=None,
    help="Only the rules of this area (e.g. kernel; docs/catalog.md lists them).",
)
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
    for fw, reason in data.get("unmapped", {}).items():
        console.print(f"  {fw}: none. {reason}")
    console.print(
        f"\n[bold]Remediation[/bold]  role {data['remediation']['role'] or 'none (preflight)'}: "
        f"{data['remediation']['command']}"
    )
    console.print(f"[bold]Check[/bold]  {data['check']}")
    applies = data["applies_to"]
    conds = f"; conditions: {', '.join(applies['conditions'])}" if applies["conditions"] else ""
    console.print(f"[bold]Applies to[/bold]  groups: {', '.join(applies['groups'])}{conds}")
    if data.get("scope") == "cluster":
        console.print("[bold]Scope[/bold]  cluster: evaluated once per Data Fabric cluster, on one "
                      "of its audited CLDB nodes, and reported as cluster:NAME")
    if data["parameters"]:
        console.print("[bold]Parameters[/bold]")
        for name, p in data["parameters"].items():
            console.print(f"  {name} ({p['type']}) = {p['default']!r}: {p['description']}")


@catalog.command()
@policies_option
@click.option(
    "--framework", "framework_id", required=True, help=", ".join(FRAMEWORK_IDS)
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
