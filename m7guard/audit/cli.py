"""`m7guard audit`: evaluate a profile on an inventory and write the reports.

Exit codes (like `oscap xccdf eval`, with error counted as failing):
  0  some result passed, no fail result at or above --fail-on and no error result
  2  a fail result at or above --fail-on, an error result of any severity (an unreachable
     host's rules are errors, so an unreachable host fails the audit), or no result passed
     or failed at all (every result notapplicable, waived or not assessed: nothing was
     proved), or an expired attestation (--attestations) with --fail-on low or medium (it
     counts as a medium finding); --fail-on none never exits 2
  1  the audit itself could not run: invalid catalog, unknown profile, missing inventory or
     waivers file, no matching host, the checks crashed
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from m7guard import history
from m7guard.audit.runner import AuditOptions, run_audit
from m7guard.audit.runner import Progress as ProgressHooks
from m7guard.errors import M7guardError
from m7guard.evidence.audit import bundle_options, prepare_signer, write_bundle
from m7guard.inventory import inventory_option
from m7guard.reports import FORMATS, parse_formats, render
from m7guard.reports.console import print_results
from m7guard.results import FAIL_ON_CHOICES, docs_address


def _docs_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return docs_address(value)
    except M7guardError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


@click.command()
@inventory_option("Ansible inventory (e.g. inventories/lab).")
@click.option("--limit", default=None, help="Hosts or groups, comma separated (shell patterns).")
@click.option(
    "--profile", default="baseline", show_default=True, help="Profile in policies/profiles/."
)
@click.option(
    "--waivers",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Waivers file (see policies/waivers.example.yml).",
)
@click.option(
    "--attestations",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Attestations of manual requirements (docs/attestations.md); an expired one fails "
    "the audit at --fail-on low or medium.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Directory for results.json and the reports.",
)
@click.option(
    "--format",
    "formats",
    default="json,html",
    show_default=True,
    help=f"Comma separated: {','.join(FORMATS)}. results.json is always written.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON_CHOICES),
    default="low",
    show_default=True,
    help=(
        "Exit 2 if a rule of at least this severity fails; errors of any severity and an "
        "audit in which nothing passed or failed exit 2 too (none: never exit 2)."
    ),
)
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=int,
    help="Hosts read and checked at once (each group of hosts in a forked process).",
)
@click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Policies directory (default: $M7GUARD_POLICIES, ./policies, or the catalog m7guard "
    "ships: the checkout's, or the installed package's).",
)
@click.option("--timeout", default=900.0, show_default=True, help="Seconds for the whole run.")
@click.option(
    "--docs-url",
    envvar="M7GUARD_DOCS_URL",
    default=None,
    callback=_docs_url,
    help="Where you publish m7guard's docs/ folder (https, http or file URL; also "
    "$M7GUARD_DOCS_URL): the SARIF report links the tool and each rule's help to it. Unset, "
    "the reports carry no such link (m7guard has no address of its own).",
)
@bundle_options
@click.option(
    "--history",
    "history_db",
    type=click.Path(path_type=Path),
    default=None,
    help="Record the audit in this history database (created if absent) once the reports are "
    "written; the HTML report gets the pass rate over time (docs/history.md).",
)
@click.pass_context
def audit(
    ctx: click.Context,
    inventory: tuple[str, ...],
    limit: str | None,
    profile: str,
    waivers: Path | None,
    attestations: Path | None,
    out: Path,
    formats: str,
    fail_on: str,
    workers: int,
    policies: Path | None,
    timeout: float,
    docs_url: str | None,
    evidence_bundle: Path | None,
    signing_key: Path | None,
    signing_kms_key_id: str | None,
    history_db: Path | None,
) -> None:
    """Evaluate the profile's rules on every host of INVENTORY and write the reports.

    Exit 0 when nothing fails at or above --fail-on, 2 when something does, when any rule
    is in error (whatever its severity; an unreachable host's rules are errors) or when no
    result passed or failed (all notapplicable: nothing proved); 1 when the audit could not
    run. --fail-on none never exits 2.
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        wanted = parse_formats(formats)
        signer = prepare_signer(evidence_bundle, signing_key, signing_kms_key_id)
        if history_db is not None:  # a database that cannot be used fails before the audit
            with history.History.open(history_db, create=True):
                pass
        opts = AuditOptions(
            inventory=inventory,
            limit=limit,
            profile=profile,
            policies=policies,
            waivers=waivers,
            attestations=attestations,
            workers=workers,
            timeout=timeout,
            docs_url=docs_url,
        )
        with Progress(
            TextColumn("[bold]audit[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar:
            task = bar.add_task("reading hosts", total=None)
            hooks = ProgressHooks(
                on_total=lambda total, hosts: bar.update(
                    task, total=total, description=f"{len(hosts)} host(s)"
                ),
                on_host=lambda host, error: (
                    error and err.print(f"[magenta]{host}: {escape(error)}")
                ),
                on_result=lambda result: bar.advance(task),
            )
            results = run_audit(opts, hooks, log_dir=out)
        chart = None
        if history_db is not None and "html" in wanted:
            chart = history.report_chart(history_db, results)
        written = render(results, wanted, out, trend_chart=chart)
        if history_db is not None:
            recorded = history.record(history_db, written["json"])
            written = {**written, "history": Path(f"{history_db} (audit {recorded.audit_id})")}
        if signer is not None and evidence_bundle is not None:
            packed = write_bundle(signer, evidence_bundle, out, waivers, inventory, policies)
            written = {**written, "evidence bundle": packed.path}
    except M7guardError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        ctx.exit(1)
    # one warning per unreachable host is enough: its failing results are not listed
    unreachable = {h["name"] for h in results.data["hosts"] if not h["reachable"]}
    print_results(results, written, fail_on, err, skip_hosts=unreachable)
    ctx.exit(results.exit_code(fail_on))
