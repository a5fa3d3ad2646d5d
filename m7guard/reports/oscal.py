"""OSCAL assessment-results (1.1.2): one result per framework of the profile.

Each host is an inventory item; each (host, rule) result is an observation (method TEST) with
its evidence; each requirement of the framework is a finding whose target status is
satisfied or not-satisfied. Requirements no rule automates are findings too, not-satisfied
with reason `other` and the remark that evidence is needed, so they are never hidden. With
attestations (audit --attestations), each is an observation of method EXAMINE with its
evidence, and a manual requirement an unexpired one covers is satisfied (reason `other`); an
expired attestation leaves it not-satisfied.
UUIDs are derived from the audit's start time, so rendering twice gives the same document.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from m7guard.results import Results

OSCAL_VERSION = "1.1.2"
NS = "https://m7guard.invalid/ns/oscal"
_TOKEN_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_LINK = re.compile(r"^https?://\S+$")


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
    obs_by_attestation: dict[tuple[str, str], list[str]] = {}
    for i, a in enumerate(results.attestations()):
        oid = uid("attestation", str(i), a["requirement"])
        obs_by_attestation.setdefault((a["framework"], a["control"]), []).append(oid)
        evidence: dict[str, Any] = {"description": f"Evidence: {a['evidence']}"}
        if _LINK.match(a["evidence"]):
            evidence["href"] = a["evidence"]
        observations.append(
            {
                "uuid": oid,
                "title": f"Attestation of {a['requirement']} by {a['who']}: {a['status']}",
                "description": a["statement"],
                "props": [
                    {"name": "requirement", "ns": NS, "value": a["requirement"]},
                    {"name": "attestation-status", "ns": NS, "value": a["status"]},
                    {"name": "attested-by", "ns": NS, "value": f"{a['who']} ({a['role']})"},
                    {"name": "attested-on", "ns": NS, "value": a["when"]},
                ],
                "methods": ["EXAMINE"],
                "types": ["control-objective" if a["status"] == "attested" else "finding"],
                "relevant-evidence": [evidence],
                "collected": f"{a['when']}T00:00:00+00:00",
                "expires": f"{a['expiry']}T23:59:59+00:00",
            }
        )
    oscal_results = []
    for fw in data["profile"]["frameworks"]:
        fw_data = data["frameworks"][fw]
        findings = []
        for req in results.requirement_statuses(fw):
            related = [o for rule_id in req.rules for o in obs_by_rule.get(rule_id, [])]
            related += obs_by_attestation.get((fw, req.id), []) if not req.rules else []
            satisfied = req.status in ("satisfied", "attested")
            if req.status == "attested":
                remark = "No automated check; attested: " + "; ".join(
                    f"{a['who']} ({a['role']}) on {a['when']}, valid through {a['expiry']}"
                    for a in req.attestations
                    if a["status"] == "attested"
                )
            elif req.status == "manual":
                remark = "No automated check: evidence needed. " + (req.evidence or "")
                expired = [a for a in req.attestations if a["status"] == "expired"]
                if expired:
                    remark += " Expired attestation(s): " + "; ".join(
                        f"{a['who']} ({a['role']}), expired {a['expiry']}" for a in expired
                    )
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
                        if req.status == "satisfied"
                        else (
                            "other"
                            if req.status in ("attested", "manual", "not-assessed", "waived")
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
