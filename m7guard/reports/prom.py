"""Prometheus text exposition format for node_exporter's textfile collector.

Write the file atomically into the collector directory (e.g. render to a temporary name and
rename it to m7guard.prom).
"""

from __future__ import annotations

import datetime as dt

from m7guard.results import Results


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def render(results: Results) -> str:
    data = results.data
    profile = data["profile"]["id"]
    lines: list[str] = []

    def metric(name: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")

    metric("m7guard_rule_status", "Result of a rule on a host: 1 for the state it is in.")
    for r in results.results:
        severity = results.severity(r["rule"])
        labels = _labels(
            host=r["host"], rule=r["rule"], severity=severity, state=r["state"], profile=profile
        )
        lines.append(f"m7guard_rule_status{labels} 1")
    metric("m7guard_results", "Number of results per host and state.")
    for host, rows in results.by_host().items():
        for state, n in results.counts(rows).items():
            lines.append(f"m7guard_results{_labels(host=host, state=state, profile=profile)} {n}")
    metric("m7guard_host_reachable", "1 if the audit could read the host, else 0.")
    for h in data["hosts"]:
        value = 1 if h["reachable"] else 0
        lines.append(f"m7guard_host_reachable{_labels(host=h['name'], profile=profile)} {value}")
    metric("m7guard_failing_results", "fail and error results per rule severity.")
    for severity in ("low", "medium", "high", "critical"):
        n = sum(
            1
            for r in results.results
            if r["state"] in ("fail", "error") and results.severity(r["rule"]) == severity
        )
        lines.append(f"m7guard_failing_results{_labels(severity=severity, profile=profile)} {n}")
    metric("m7guard_framework_requirements", "Requirements per framework and status.")
    metric_ratio = []
    for fw in data["profile"]["frameworks"]:
        summary = results.framework_summary(fw)
        for status, key in (
            ("satisfied", "satisfied"),
            ("not-satisfied", "not_satisfied"),
            ("waived", "waived"),
            ("not-assessed", "not_assessed"),
            ("manual", "manual"),
            # only in the results of an audit given attestations
            *((("attested", "attested"),) if "attested" in summary else ()),
        ):
            labels = _labels(framework=fw, status=status, profile=profile)
            lines.append(f"m7guard_framework_requirements{labels} {summary[key]}")
        metric_ratio.append((fw, summary["share_satisfied"]))
    metric(
        "m7guard_framework_satisfied_ratio",
        "Share of automated requirements whose checks all passed (manual ones excluded).",
    )
    for fw, ratio in metric_ratio:
        lines.append(
            f"m7guard_framework_satisfied_ratio{_labels(framework=fw, profile=profile)} {ratio:.4f}"
        )
    metric("m7guard_audit_timestamp_seconds", "When the audit finished (Unix time).")
    lines.append(
        f"m7guard_audit_timestamp_seconds{_labels(profile=profile)} {_ts(data['finished']):.0f}"
    )
    metric("m7guard_audit_duration_seconds", "Wall time of the audit.")
    duration = _ts(data["finished"]) - _ts(data["started"])
    lines.append(f"m7guard_audit_duration_seconds{_labels(profile=profile)} {duration:.3f}")
    return "\n".join(lines) + "\n"
