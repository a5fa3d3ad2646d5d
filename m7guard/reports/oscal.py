"""OSCAL assessment-results (1.1.2): one result per framework of the profile.

Each host is an inventory item; each (host, rule) result is an observation (method TEST) with
its evidence; each requirement of the framework is a finding whose target status is
satisfied or not-satisfied. Requirements no rule automates are findings too, not-satisfied
with reason `other` and the remark that evidence is needed, so they are never hidden.
UUIDs are derived from the audit's start time, so rendering twice gives the same document.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from m7guard.audit.results import Results

OSCAL_VERSION = "1.1.2"
NS = "https://m7guard.invalid/ns/oscal"
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def token(framework: str, requirement: str) -> str:
    """An OSCAL token for a requirement id: 164.312(a)(1) -> hipaa-164.312_a_1."""
    return f"{framework}-{_TOKEN_BAD.sub('_', requirement).strip('_')}"


def _ts(text: str) -> str:
    return text.replace("Z", "+00:00")


def render(results: Results) -> str:
    data = results.data
    seed = f"m7guard:{data['started']}:{data['inventory']}:{data['profile']['id']}"

    def uid(*parts: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join((seed, *parts))))

    items = [
        {
            "uuid": uid("host", h["name"]),
            "description": f"Inventory host {h['name']}",
            "props": [
                {"name": "fqdn", "value": h["name"]},
                {"name": "reachable", "ns": NS, "value": str(h["reachable"]).lower()},
            ],
        }
        for h in data["hosts"]
    ]
    host_uuid = {h["name"]: uid("host", h["name"]) for h in data["hosts"]}
    observations = []
    obs_by_rule: dict[str, list[str]] = {}
    for r in results.results:
        oid = uid("obs", r["host"], r["rule"])
        obs_by_rule.setdefault(r["rule"], []).append(oid)
        rule = data["rules"][r["rule"]]
        props = [
            {"name": "rule", "ns": NS, "value": r["rule"]},
            {"name": "state", "ns": NS, "value": r["state"]},
            {"name": "severity", "ns": NS, "value": rule["severity"]},
        ]
        obs: dict[str, Any] = {
            "uuid": oid,
            "title": f"{r['rule']} on {r['host']}: {r['state']}",
            "description": r["message"] or f"{rule['title']}: {r['state']}",
            "props": props,
            "methods": ["TEST"],
            "types": ["finding" if r["state"] in ("fail", "error") else "control-objective"],
            "subjects": [{"subject-uuid": host_uuid[r["host"]], "type": "inventory-item"}],
            "relevant-evidence": [
                {
                    "description": "What the check read (trimmed): "
                    + json.dumps(r["evidence"], sort_keys=True)[:4000]
                }
            ],
            "collected": _ts(data["finished"]),
        }
        if r.get("waiver"):
            w = r["waiver"]
            obs["remarks"] = (
                f"Waived until {w['expires']} by {w['approver']}: {w['justification']} "
                f"(the check found: {r.get('evaluated_state', 'unknown')})"
            )
        observations.append(obs)
    oscal_results = []
    for fw in data["profile"]["frameworks"]:
        fw_data = data["frameworks"][fw]
        findings = []
        for req in results.requirement_statuses(fw):
            related = [o for rule_id in req.rules for o in obs_by_rule.get(rule_id, [])]
            satisfied = req.status == "satisfied"
            if req.status == "manual":
                remark = "No automated check: evidence needed. " + (req.evidence or "")
            elif req.status == "not-assessed":
                remark = "Its rules were not applicable to any audited host, or not assessed."
            elif req.status == "waived":
                remark = (
                    "Not satisfied: an accepted exception (waiver) covers a result of its rules."
                )
            elif req.failing:
                remark = "Failing rules: " + ", ".join(req.failing)
            else:
                remark = "Every result of its rules passed or was not applicable."
            finding: dict[str, Any] = {
                "uuid": uid("finding", fw, req.id),
                "title": f"{fw} {req.id}: {req.title}",
                "description": f"{req.title}. Rules: {', '.join(req.rules) or 'none (manual)'}.",
                "props": [
                    {"name": "requirement", "ns": NS, "value": req.id},
                    {"name": "coverage", "ns": NS, "value": req.status},
                ],
                "target": {
                    "type": "objective-id",
                    "target-id": token(fw, req.id),
                    "title": req.title,
                    "status": {
                        "state": "satisfied" if satisfied else "not-satisfied",
                        "reason": "pass"
                        if satisfied
                        else (
                            "other"
                            if req.status in ("manual", "not-assessed", "waived")
                            else "fail"
                        ),
                    },
                },
                "remarks": remark.strip(),
            }
            if related:
                finding["related-observations"] = [{"observation-uuid": o} for o in related]
            findings.append(finding)
        oscal_results.append(
            {
                "uuid": uid("result", fw),
                "title": f"m7guard {data['profile']['id']}: {fw_data['title']}",
                "description": (
                    f"Automated checks of profile {data['profile']['id']} on "
                    f"{len(data['hosts'])} host(s) of {data['inventory']}."
                ),
                "start": _ts(data["started"]),
                "end": _ts(data["finished"]),
                "local-definitions": {"inventory-items": items},
                "reviewed-controls": {
                    "control-selections": [{"include-all": {}}],
                },
                "observations": observations,
                "findings": findings,
            }
        )
    doc = {
        "assessment-results": {
            "uuid": uid("document"),
            "metadata": {
                "title": f"m7guard assessment results: {data['profile']['title']}",
                "last-modified": _ts(data["finished"]),
                "version": data["tool"]["version"],
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": f"policies/profiles/{data['profile']['id']}.yml"},
            "results": oscal_results,
        }
    }
    return json.dumps(doc, indent=2) + "\n"
