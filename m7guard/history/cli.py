"""`m7guard history`: record audits in a local database and show compliance over time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from m7guard.errors import M7guardError
from m7guard.history.analysis import (
    EVALUATED_STATES,
    Filters,
    expiring_waivers,
    framework_series,
    lifecycles,
    load_snapshots,
    newest_date,
    rule_series,
)
from m7guard.history.store import ENV_DB, History, HistoryError, default_db_path

JSON_VERSION = "1"


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=None,
        help=f"History database (default: ${ENV_DB} or ~/.local/share/m7guard/history.sqlite).",
    )(fn)


@click.group()
def history() -> None:
    """Record audits and show compliance over time (see docs/history.md)."""


@history.command(name="import")
@click.argument(
    "results_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@db_option
@click.pass_context
def import_command(ctx: click.Context, results_files: tuple[Path, ...], db: Path | None) -> None:
    """Record RESULTS_FILES (results.json of `m7guard audit`) in the history. A file already
    recorded (same SHA-256) is skipped and changes nothing; exit 1 if any file could not be
    recorded."""
    path = db or default_db_path()
    failed = False
    try:
        with History.open(path, create=True) as hist:
            for results_file in results_files:
                try:
                    done = hist.record_file(results_file)
                except HistoryError:
                    raise
                except M7guardError as exc:
                    click.echo(f"error: {exc}", err=True)
                    failed = True
                    continue
                if done.added:
                    click.echo(f"{results_file}: recorded as audit {done.audit_id}")
                else:
                    click.echo(
                        f"{results_file}: already recorded as audit {done.audit_id} "
                        "(same SHA-256): skipped, nothing changed"
                    )
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"history: {path}")
    ctx.exit(1 if failed else 0)


def _as_of(text: str, snapshots: list[Any]) -> dt.date:
    if text == "now":
        return dt.date.today()
    if text == "newest":
        return newest_date(snapshots) or dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not now, newest or a date YYYY-MM-DD", param_hint="--as-of"
        ) from exc


def build(hist: History, filters: Filters, expiring_days: int, as_of: str) -> dict[str, Any]:
    """The whole `history show` document (its JSON output)."""
    snaps = load_snapshots(hist, filters.profile)
    ref = _as_of(as_of, snaps)

    def points(entry: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"audit": a.id, "started": a.started, **r.to_dict()} for a, r in entry["points"]]

    return {
        "schema_version": JSON_VERSION,
        "database": str(hist.path),
        "filters": filters.to_dict(),
        "audits": [s.audit.to_dict() for s in snaps],
        "frameworks": {
            fw: {"title": e["title"], "points": points(e)}
            for fw, e in framework_series(snaps, filters).items()
        },
        "rules": {
            rule: {"title": e["title"], "severity": e["severity"], "points": points(e)}
            for rule, e in rule_series(snaps, filters).items()
        },
        "findings": [life.to_dict() for life in lifecycles(snaps, filters) if life.episodes],
        "expiring_waivers": {
            "as_of": ref.isoformat(),
            "days": expiring_days,
            "waivers": [w.to_dict() for w in expiring_waivers(snaps, ref, expiring_days, filters)],
        },
    }


def _short(digest: str) -> str:
    kind, _, value = digest.rpartition(":")
    return f"{kind}:{value[:12]}" if kind else value[:12]


def _cell(point: dict[str, Any] | None) -> str:
    if point is None:
        return "."
    if point["rate"] is None:
        return "-"
    return f"{100 * point['rate']:.0f}% ({point['passed']}/{point['evaluated']})"


def render_text(doc: dict[str, Any]) -> str:
    audits = doc["audits"]
    out = [f"history {doc['database']}: {len(audits)} audit(s)"]
    if not audits:
        return "\n".join(out) + "\n"
    for a in audits:
        out.append(
            f"  #{a['id']}  {a['started']}  {a['profile']}  m7guard {a['tool_version']}"
            f"  catalog {a['catalog_version']} {_short(a['catalog_digest'])}  {a['source']}"
        )
    ids = [a["id"] for a in audits]

    def table(title: str, series: dict[str, Any], label: Callable[[str, Any], str]) -> None:
        out.append("")
        out.append(title)
        if not series:
            out.append("  (none)")
            return
        rows = [["", *(f"#{i}" for i in ids)]]
        for key, entry in series.items():
            by_audit = {p["audit"]: p for p in entry["points"]}
            rows.append([label(key, entry), *(_cell(by_audit.get(i)) for i in ids)])
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        out.extend(
            "  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        )

    counted = ", ".join(sorted(EVALUATED_STATES))
    table(
        f"Pass rate per framework (passed / evaluated = {counted}; . not in that audit)",
        doc["frameworks"],
        lambda fw, e: fw,
    )
    table("Pass rate per rule", doc["rules"], lambda rule, e: f"{rule} ({e['severity']})")
    out.append("")
    out.append(f"Findings ({len(doc['findings'])} host and rule pairs that failed at least once)")
    for f in doc["findings"]:
        steps = " -> ".join(
            f"{e['status']} #{e['audit_id']}"
            + (f" ({e['state']})" if e["state"] == "error" else "")
            for e in f["timeline"]
        )
        out.append(f"  {f['host']} {f['rule']}: {'OPEN' if f['open'] else 'closed'}: {steps}")
        for ep in f["episodes"]:
            fixed = f"fixed {ep['fixed']} (#{ep['fixed_audit']})" if ep["fixed"] else "not fixed"
            kind = "reopened" if ep["reopened"] else "first failed"
            out.append(f"      {kind} {ep['opened']} (#{ep['opened_audit']}), {fixed}")
    ew = doc["expiring_waivers"]
    out.append("")
    out.append(f"Waivers expiring within {ew['days']} days of {ew['as_of']} ({len(ew['waivers'])})")
    for w in ew["waivers"]:
        when = f"in {w['days_left']} days" if w["days_left"] >= 0 else "EXPIRED"
        out.append(
            f"  {w['host']} {w['rule']}: expires {w['expires']} ({when}), audit #{w['audit_id']}"
        )
    return "\n".join(out) + "\n"


@history.command()
@db_option
@click.option("--framework", default=None, help="Only this framework (id, e.g. pci_dss_4).")
@click.option("--rule", default=None, help="Only this rule (id).")
@click.option("--host", default=None, help="Only this host.")
@click.option("--profile", default=None, help="Only audits of this profile.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--expiring-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="List waived results whose waiver expires within this many days.",
)
@click.option(
    "--as-of",
    default="now",
    show_default=True,
    help="Date the expiring waivers are counted from: now, newest (the newest audit's date) "
    "or YYYY-MM-DD.",
)
@click.pass_context
def show(
    ctx: click.Context,
    db: Path | None,
    framework: str | None,
    rule: str | None,
    host: str | None,
    profile: str | None,
    fmt: str,
    expiring_days: int,
    as_of: str,
) -> None:
    """Pass rate per framework and per rule per audit, the lifecycle of each finding
    (new, persisting, fixed, reopened) and the waivers about to expire."""
    filters = Filters(framework=framework, rule=rule, host=host, profile=profile)
    try:
        with History.open(db or default_db_path()) as hist:
            doc = build(hist, filters, expiring_days, as_of)
    except M7guardError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(json.dumps(doc, indent=2) if fmt == "json" else render_text(doc), nl=fmt == "json")
