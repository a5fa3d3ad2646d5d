"""SARIF 2.1.0: one run per host (automationDetails.id), every rule with security-severity,
every result located at its rule file. When the audit was given the address of m7guard's
published docs/ (--docs-url), the tool's informationUri is that address and each rule's helpUri
its row of the rule table (docs/reference/rules.md); without it neither is written, and the
official validator warns SARIF2005 (no informationUri) once per run.

Kinds: pass -> pass, fail -> fail (level by severity), error -> open (not evaluated),
notapplicable -> notApplicable, notchecked (not assessed) -> open; a waived result keeps the
kind of what the check found and carries an accepted external suppression with the justification.
"""

from __future__ import annotations

import json
from typing import Any

from m7guard.catalog.model import rule_help_url
from m7guard.results import Results

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}
KIND = {
    "pass": "pass",
    "fail": "fail",
    "error": "open",
    "notapplicable": "notApplicable",
    "notchecked": "open",
}
SRCROOT = "SRCROOT"


def _rule(rule_id: str, rule: dict[str, Any], docs_url: str | None) -> dict[str, Any]:
    refs = [f"{fw}:{i}" for fw, ids in sorted(rule["references"].items()) for i in ids]
    markdown = (
        f"**{rule['title']}**\n\n{rule['description']}\n\n*Why:* {rule['rationale']}\n\n"
        f"*Remediation:* `{rule['remediation']['command']}`"
    )
    out: dict[str, Any] = {
        "id": rule_id,
        "name": rule_id.replace("-", ""),
        "shortDescription": {"text": rule["title"]},
        "fullDescription": {"text": rule["description"]},
    }
    if docs_url:
        out["helpUri"] = rule_help_url(docs_url, rule_id)
    return {
        **out,
        "help": {
            "text": f"{rule['rationale']} Remediation: {rule['remediation']['command']}",
            "markdown": markdown,
        },
        "defaultConfiguration": {"level": LEVEL[rule["severity"]]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule["severity"]],
            "tags": ["security", "compliance", rule.get("area", ""), *refs],
            "precision": "very-high",
            "check": rule["check"],
        },
    }


def _result(r: dict[str, Any], rule: dict[str, Any], index: int) -> dict[str, Any]:
    state = r.get("evaluated_state", r["state"]) if r["state"] == "waived" else r["state"]
    kind = KIND.get(state, "review")
    text = r["message"] or f"{r['rule']} {state} on {r['host']}"
    out: dict[str, Any] = {
        "ruleId": r["rule"],
        "ruleIndex": index,
        "kind": kind,
        "level": LEVEL[rule["severity"]] if kind == "fail" else "none",
        "message": {"text": f"{r['host']}: {text}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": rule["file"], "uriBaseId": SRCROOT},
                    "region": {"startLine": 1},
                },
                "logicalLocations": [{"name": r["host"], "kind": "module"}],
            }
        ],
        "partialFingerprints": {"m7guard/host-rule": f"{r['host']}/{r['rule']}"},
        "properties": {"host": r["host"], "state": r["state"], "evidence": r["evidence"]},
    }
    if r["state"] == "waived" and r.get("waiver"):
        w = r["waiver"]
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{w['justification']} (approved by {w['approver']}, "
                f"expires {w['expires']})",
                "location": {
                    "physicalLocation": {"artifactLocation": {"uri": w["source"] or "waivers"}}
                },
            }
        ]
    return out


def render(results: Results) -> str:
    data = results.data
    rule_ids = sorted(data["rules"])
    index = {rid: i for i, rid in enumerate(rule_ids)}
    docs_url = data["tool"].get("docs_url")
    driver: dict[str, Any] = {"name": "m7guard"}
    if docs_url:  # the audit was told where docs/ is published (m7guard audit --docs-url)
        driver["informationUri"] = docs_url
    driver |= {
        "version": data["tool"]["version"],
        "semanticVersion": data["tool"]["version"],
        "rules": [_rule(rid, data["rules"][rid], docs_url) for rid in rule_ids],
    }
    runs = []
    for host, rows in results.by_host().items():
        runs.append(
            {
                "tool": {"driver": driver},
                "automationDetails": {
                    "id": f"m7guard/{data['profile']['id']}/{host}/",
                    "description": {"text": f"m7guard {data['profile']['id']} audit of {host}"},
                },
                "originalUriBaseIds": {
                    SRCROOT: {"description": {"text": "The m7guard project root (policies/)."}}
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "startTimeUtc": data["started"],
                        "endTimeUtc": data["finished"],
                    }
                ],
                "results": [_result(r, data["rules"][r["rule"]], index[r["rule"]]) for r in rows],
                "properties": {"host": host, "profile": data["profile"]["id"]},
            }
        )
    doc = {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}
    return json.dumps(doc, indent=2) + "\n"
