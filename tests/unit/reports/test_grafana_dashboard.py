"""contrib/grafana/m7guard-dashboard.json: typed against Grafana's published dashboard schema
(npm @grafana/schema, TypeScript types, checked with tsc --strict), and every metric and label
it queries is one the Prometheus renderer writes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from m7guard.reports import prom
from m7guard.results import Results

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "contrib" / "grafana" / "m7guard-dashboard.json"
TOOLS = ROOT / "tests" / "tools"
TSC = TOOLS / "node_modules" / ".bin" / "tsc"
SCHEMA = TOOLS / "node_modules" / "@grafana" / "schema" / "package.json"


def _tools() -> None:
    want = json.loads((TOOLS / "package.json").read_text())["dependencies"]
    assert TSC.exists() and SCHEMA.exists(), (
        "run scripts/test-tools.sh (typescript, @grafana/schema)"
    )
    assert json.loads(SCHEMA.read_text())["version"] == want["@grafana/schema"]


def typecheck(dashboard: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """tsc --noEmit --strict on `const d: Dashboard = <dashboard>` (excess properties are
    errors too: an object literal assigned to a type may not carry unknown keys)."""
    _tools()
    (tmp_path / "node_modules").symlink_to(TOOLS / "node_modules", target_is_directory=True)
    source = tmp_path / "dashboard.ts"
    source.write_text(
        "import type { Dashboard } from '@grafana/schema';\n"
        f"export const d: Dashboard = {json.dumps(dashboard, indent=2)};\n"
    )
    return subprocess.run(
        [
            str(TSC),
            "--noEmit",
            "--strict",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--target",
            "es2022",
            str(source),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_type_checks_against_grafana_schema(tmp_path: Path) -> None:
    done = typecheck(load(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["panels"][0]["gridPos"].update(w="12"),  # a string where a number is due
        lambda d: d.pop("schemaVersion"),  # a required field missing
        lambda d: d["panels"][1].update(gridpos={"x": 0}),  # an unknown key (misspelt)
    ],
    ids=["gridPos-type", "schemaVersion-missing", "unknown-key"],
)
def test_a_broken_dashboard_fails_the_check(tmp_path: Path, breakage: Any) -> None:
    dashboard = load()
    breakage(dashboard)
    done = typecheck(dashboard, tmp_path)
    assert done.returncode != 0
    assert "error TS" in done.stdout


# --- PromQL: metric and label names the dashboard uses ----------------------------------

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def promql_names(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """(metric names, label names matched per metric, label names grouped by) of an
    expression; a name followed by "(" is a function or an aggregation, not a metric."""
    matchers: dict[str, set[str]] = {}
    for m in _SELECTOR.finditer(expr):
        matchers.setdefault(m.group(1) or "", set()).update(_MATCHER.findall(m.group(2)))
    grouped = {
        label.strip() for g in _GROUPING.findall(expr) for label in g.split(",") if label.strip()
    }
    bare = _SELECTOR.sub(lambda m: m.group(1) or "", _STRING.sub('""', expr))
    bare = _GROUPING.sub(" ", bare)
    metrics = {
        name for name, call in _IDENT.findall(bare) if not call and name.lower() not in KEYWORDS
    }
    return metrics, matchers, grouped


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]+)\)", query)
            assert inner, query
            exprs.append(f"count by ({inner.group(2)}) ({inner.group(1)})")
    return exprs


def written_metrics(results: Results) -> dict[str, set[str]]:
    """Metric name -> label names, as the Prometheus renderer writes them."""
    out: dict[str, set[str]] = {}
    for line in prom.render(results).splitlines():
        if line.startswith("# TYPE "):
            out.setdefault(line.split()[2], set())
        elif not line.startswith("#"):
            name, _, rest = line.partition("{")
            out.setdefault(name, set()).update(re.findall(r'([a-zA-Z_]+)="', rest))
    return out


def test_promql_parser_finds_metrics_and_labels() -> None:
    metrics, matchers, grouped = promql_names(
        'count by (severity) (m7guard_x{state=~"fail|e{r}"}) or vector(0) + time() - m7guard_y'
    )
    assert metrics == {"m7guard_x", "m7guard_y"}
    assert matchers == {"m7guard_x": {"state"}}
    assert grouped == {"severity"}


def test_every_queried_metric_and_label_is_written(results: Results) -> None:
    written = written_metrics(results)
    used: set[str] = set()
    for expr in dashboard_queries(load()):
        metrics, matchers, grouped = promql_names(expr)
        assert metrics, expr
        unknown = metrics - set(written)
        assert not unknown, f"{expr}: the prom renderer writes no {sorted(unknown)}"
        labels = set().union(*(written[m] for m in metrics))
        for metric, names in matchers.items():
            assert names <= written.get(metric, labels), f"{expr}: labels {sorted(names)}"
        assert grouped <= labels, f"{expr}: grouped by {sorted(grouped - labels)}"
        used |= metrics
    # the dashboard shows every metric the audit writes
    assert used == set(written)


def test_the_check_catches_a_metric_the_renderer_does_not_write(results: Results) -> None:
    written = written_metrics(results)
    metrics, _, _ = promql_names('sum(m7guard_rule_state{state="fail"})')
    assert metrics - set(written) == {"m7guard_rule_state"}
