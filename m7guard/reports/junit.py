"""JUnit XML: one testsuite per host, one testcase per host and rule, framework ids as properties.

fail -> <failure>, error -> <error>, notapplicable, waived and notchecked (not assessed) ->
<skipped> (with the reason).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from m7guard.results import Results


def _props(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(props, "property", name=name, value=value)


def _count(results: list[dict[str, Any]]) -> dict[str, str]:
    n = {s: sum(1 for r in results if r["state"] == s) for s in ("fail", "error")}
    skipped = sum(1 for r in results if r["state"] in ("notapplicable", "waived", "notchecked"))
    return {
        "tests": str(len(results)),
        "failures": str(n["fail"]),
        "errors": str(n["error"]),
        "skipped": str(skipped),
        "time": f"{sum(r['duration'] for r in results):.4f}",
    }


def render(results: Results) -> str:
    data = results.data
    root = ET.Element(
        "testsuites", name=f"m7guard {data['profile']['id']}", **_count(results.results)
    )
    for host, rows in results.by_host().items():
        suite = ET.SubElement(
            root, "testsuite", name=host, hostname=host, timestamp=data["started"], **_count(rows)
        )
        _props(suite, [("profile", data["profile"]["id"]), ("inventory", data["inventory"])])
        for r in rows:
            rule = data["rules"][r["rule"]]
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"m7guard.{host}",
                name=f"{r['rule']} {rule['title']}",
                time=f"{r['duration']:.4f}",
                file=rule["file"],
            )
            pairs = [("rule", r["rule"]), ("severity", rule["severity"]), ("state", r["state"])]
            for fw, ids in sorted(rule["references"].items()):
                pairs += [(fw, i) for i in ids]
            _props(case, pairs)
            evidence = json.dumps(r["evidence"], indent=2, sort_keys=True)
            if r["state"] == "fail":
                ET.SubElement(
                    case, "failure", message=r["message"], type=rule["severity"]
                ).text = f"{r['message']}\n\nremediation: {rule['remediation']['command']}"
            elif r["state"] == "error":
                ET.SubElement(case, "error", message=r["message"], type="error").text = r["message"]
            elif r["state"] == "notapplicable":
                ET.SubElement(case, "skipped", message=f"notapplicable: {r['message']}")
            elif r["state"] == "notchecked":
                ET.SubElement(case, "skipped", message=f"not assessed: {r['message']}")
            elif r["state"] == "waived":
                w = r["waiver"]
                ET.SubElement(
                    case,
                    "skipped",
                    message=f"waived until {w['expires']} by {w['approver']}: {w['justification']}",
                )
            ET.SubElement(case, "system-out").text = evidence
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
