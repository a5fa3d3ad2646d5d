"""`m7guard report`: render reports from a results.json."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from m7guard.audit.results import Results
from m7guard.errors import M7guardError
from m7guard.reports import FORMATS, parse_formats, render


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
@click.pass_context
def report(
    ctx: click.Context, results_file: Path, formats: str, out: Path | None, history_db: Path | None
) -> None:
    """Render reports (html, junit, sarif, oscal, prom) from RESULTS_FILE."""
    try:
        results = Results.load(results_file)
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
