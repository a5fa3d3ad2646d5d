"""A self-contained HTML report (inline CSS, no external assets, print friendly).

Everything taken from the results is escaped (Jinja2 autoescape): evidence is host data.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from m7guard.catalog.model import SEVERITIES, rule_help_url
from m7guard.results import STATE_LABELS, STATES, Results

STATE_LETTER = {
    "pass": "P",
    "fail": "F",
    "error": "E",
    "notapplicable": "N/A",
    "waived": "W",
    "notchecked": "NC",
}


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("m7guard.reports", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True)
    env.filters["pct"] = lambda v: f"{100 * v:.0f}%"
    return env


def context(results: Results) -> dict[str, Any]:
    data = results.data
    rows = results.results
    by_cell = {(r["host"], r["rule"]): r for r in rows}
    failing_by_rule: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["state"] in ("fail", "error"):
            failing_by_rule.setdefault(r["rule"], []).append(r)
    severity_counts = Counter(
        results.severity(r["rule"]) for r in rows if r["state"] in ("fail", "error")
    )
    failing = sorted(
        failing_by_rule.items(),
        key=lambda kv: (-SEVERITIES.index(results.severity(kv[0])), kv[0]),
    )
    frameworks = [
        {
            "summary": results.framework_summary(fw),
            "requirements": results.requirement_statuses(fw),
        }
        for fw in data["profile"]["frameworks"]
    ]
    return {
        "data": data,
        "counts": results.counts(),
        "states": STATES,
        "letters": STATE_LETTER,
        "labels": STATE_LABELS,
        "hosts": results.hosts,
        "rule_ids": sorted(data["rules"]),
        "cell": by_cell,
        "failing": failing,
        "severities": list(reversed(SEVERITIES)),
        "severity_counts": severity_counts,
        "frameworks": frameworks,
        "waived_results": [r for r in rows if r["state"] == "waived"],
        # each rule's row of the generated rule table, when the audit was told where docs/
        # is published (m7guard audit --docs-url); none otherwise, as in SARIF
        "help": ({rid: rule_help_url(data["tool"]["docs_url"], rid) for rid in data["rules"]}
                 if data["tool"].get("docs_url") else {}),
    }


def render(results: Results, trend_chart: str | None = None) -> str:
    """The page; trend_chart (an inline SVG from m7guard.history) adds a "Pass rate over
    time" section, and without it the page is what it was before the history existed."""
    page = context(results) | {"trend_chart": trend_chart}
    return _env().get_template("report.html.j2").render(**page)
