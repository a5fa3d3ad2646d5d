"""`m7guard report`: render reports from a results.json."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from m7guard.errors import M7guardError
from m7guard.reports import FORMATS, parse_formats, render
from m7guard.results import Results


def _attest(results: Results, path: Path, policies: Path | None) -> Results:
    """The results with the attestations of PATH, validated against the catalog and judged
    on the audit's day (when the results finished)."""
    import datetime as dt

    from m7guard.catalog import find_policies_dir, load_catalog
    from m7guard.catalog.attestations import attach, load_attestations

    catalog = load_catalog(find_policies_dir(policies))
    day = dt.date.fromisoformat(results.data["finished"][:10])
    attestations = load_attestations(path, catalog, day)
    return Results.validated(attach(results.data, attestations, day), str(path))


@click.command()
@click.argument("results_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "formats",
    default="html",
    show_default=True,
    help=f"Comma separated: {','.join(FORMATS)} or all.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: the directory of RESULTS_FILE).",
)
@click.option(
    "--history",
    "history_db",
    type=click.Path(path_type=Path),
    default=None,
    help="History database: the HTML report shows the pass rate over the recorded audits "
    "of the same profile (docs/history.md).",
)
@click.option(
    "--attestations",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Attestations of manual requirements (docs/attestations.md), judged on the audit's "
    "day; the reports show them (RESULTS_FILE is not changed).",
)
@click.option(
    "--policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Policies directory the attestations are validated against (default: as for audit).",
)
@click.pass_context
def report(
    ctx: click.Context,
    results_file: Path,
    formats: str,
    out: Path | None,
    history_db: Path | None,
    attestations: Path | None,
    policies: Path | None,
) -> None:
    """Render reports (html, junit, sarif, oscal, prom, poam) from RESULTS_FILE."""
    try:
        results = Results.load(results_file)
        if attestations is not None:
            results = _attest(results, attestations, policies)
        wanted = [f for f in parse_formats(formats) if f != "json"]
        chart = None
        if history_db is not None and "html" in wanted:
            from m7guard.history import report_chart

            digest = hashlib.sha256(results_file.read_bytes()).hexdigest()
            chart = report_chart(history_db, results, digest)
        written = render(
            results, wanted, out or results_file.parent, write_json=False, trend_chart=chart
        )
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    for fmt, path in written.items():
        click.echo(f"{fmt}: {path}")
