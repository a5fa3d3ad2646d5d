"""The console: the summary table and the gating results printed after an audit or a preflight."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from m7guard.results import STATE_LABELS, STATES, Results

STATE_STYLE = {
    "pass": "green",
    "fail": "red",
    "error": "magenta",
    "notapplicable": "dim",
    "waived": "yellow",
    "notchecked": "cyan",
}


def summary_table(results: Results) -> Table:
    table = Table(title=f"profile {results.data['profile']['id']}")
    table.add_column("host")
    for state in STATES:
        table.add_column(STATE_LABELS.get(state, state), justify="right", style=STATE_STYLE[state])
    for host, rows in results.by_host().items():
        counts = results.counts(rows)
        table.add_row(host, *(str(counts[s]) for s in STATES))
    return table


def print_results(
    results: Results,
    written: Mapping[str, Path],
    fail_on: str,
    err: Console,
    skip_hosts: Collection[str] = (),
) -> None:
    """The summary table, the warnings (on err), the results failing at or above fail_on
    (but those of skip_hosts) and the reports written. Messages are printed as written
    (escaped, not read as markup) and lines are not wrapped."""
    console = Console(highlight=False, soft_wrap=True)
    console.print(summary_table(results))
    for warning in results.data["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for r in results.gating(fail_on):
        if r["host"] in skip_hosts:
            continue
        console.print(
            f"[red]{r['state'].upper()}[/red] {r['host']} {r['rule']} "
            f"({results.severity(r['rule'])}): {escape(r['message'])}"
        )
    for a in results.expired_attestations(fail_on):
        console.print(
            f"[red]EXPIRED ATTESTATION[/red] {escape(a['requirement'])} by {escape(a['who'])} "
            f"expired on {a['expiry']}: the requirement is not attested"
        )
    if fail_on != "none" and results.vacuous():
        console.print(
            "[red]NOTHING EVALUATED[/red] no result passed or failed (every result is "
            "notapplicable, waived or not assessed): the audit proves nothing"
        )
    for fmt, path in written.items():
        console.print(f"{fmt}: {path}")
