"""OSCAL plan of action and milestones (POA&M, 1.1.2): what is left to do after an audit.

One poam-item per rule and host set that needs action:
  - a rule failing (state fail) on some hosts: one item listing those hosts, with the command
    that applies the rule's remediation role to them (`ansible-playbook -i INVENTORY
    playbooks/site.yml --tags TAGS --limit HOSTS`) and a milestone: the remediation target,
    REMEDIATION_DAYS[severity] days after the audit;
  - a rule in error (could not be evaluated, e.g. an unreachable host) on some hosts: one
    item for those hosts (evaluate it again; remediate if it then fails), same target;
  - a rule waived on some hosts: one item per waiver, its milestone the waiver's expiry (the
    day by which the exception must be fixed or approved again); its risk is
    deviation-approved.
Passing, not applicable and not assessed results make no item; when nothing needs action the
document holds a single item, "Nothing to plan", with state none and no rule (OSCAL requires
at least one item).

Each item has a risk (statement, status, deadline, the remediation with its milestone task)
and an observation per host result, linked both ways. UUIDs are derived from the audit's start
time, so rendering twice gives the same document.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import uuid
from typing import Any

from m7guard.reports.oscal import NS, OSCAL_VERSION, _ts
from m7guard.results import Results

# Days from the audit to the remediation target of a failing rule, by its severity. Fixed
# here (the POA&M is rendered from the results file alone); the same terms the example
# waiver policy allows an exception to run.
REMEDIATION_DAYS: dict[str, int] = {"critical": 30, "high": 90, "medium": 180, "low": 365}
PLAYBOOK = "playbooks/site.yml"


def remediation_command(results: Results, rule_id: str, hosts: list[str]) -> str:
    """The command that applies the rule's fix to these hosts; for a rule without a role
    (a preflight rule), what its notes say to do."""
    remediation = results.data["rules"][rule_id]["remediation"]
    if not remediation.get("role"):
        return str(remediation.get("notes") or remediation.get("command") or "")
    inventory = " ".join(
        f"-i {shlex.quote(source)}" for source in results.data["inventory"].split(", ")
    )
    tags = ",".join(remediation["tags"])
    return (
        f"ansible-playbook {inventory} {PLAYBOOK} --tags {shlex.quote(tags)} "
        f"--limit {shlex.quote(','.join(hosts))}"
    )


def _groups(results: Results) -> list[dict[str, Any]]:
    """(rule, kind, waiver) -> results, in rule order: kind fail, error or waived."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in results.results:
        if r["state"] in ("fail", "error"):
            key = (r["rule"], r["state"], "")
            waiver = None
        elif r["state"] == "waived" and r.get("waiver"):
            waiver = r["waiver"]
            key = (r["rule"], "waived", json.dumps(waiver, sort_keys=True))
        else:
            continue
        group = groups.setdefault(
            key, {"rule": r["rule"], "kind": key[1], "waiver": waiver, "results": []}
        )
        group["results"].append(r)
    order = {"fail": 0, "error": 1, "waived": 2}
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], order[k[1]], k[2]))]


def _end_of(day: dt.date) -> str:
    return f"{day.isoformat()}T23:59:59+00:00"


def render(results: Results) -> str:
    data = results.data
    seed = f"m7guard:{data['started']}:{data['inventory']}:{data['profile']['id']}"

    def uid(*parts: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join((seed, "poam", *parts))))

    audit_day = dt.datetime.fromisoformat(data["finished"].replace("Z", "+00:00")).date()
    host_uuid = {h["name"]: uid("host", h["name"]) for h in data["hosts"]}
    items_out: list[dict[str, Any]] = []
    risks: list[dict[str, Any]] = []
    observations: list[dict[str, Any]] = []
    for group in _groups(results):
        rule_id, kind, waiver = group["rule"], group["kind"], group["waiver"]
        rule = data["rules"][rule_id]
        severity = rule["severity"]
        hosts = sorted({r["host"] for r in group["results"]})
        key = (rule_id, kind, waiver["hosts"] if waiver else "", waiver["source"] if waiver else "")
        command = remediation_command(results, rule_id, hosts)
        obs_ids = []
        for r in sorted(group["results"], key=lambda r: r["host"]):
            oid = uid("obs", r["host"], rule_id)
            obs_ids.append(oid)
            observations.append(
                {
                    "uuid": oid,
                    "title": f"{rule_id} on {r['host']}: {r['state']}",
                    "description": r["message"] or f"{rule['title']}: {r['state']}",
                    "props": [
                        {"name": "rule", "ns": NS, "value": rule_id},
                        {"name": "state", "ns": NS, "value": r["state"]},
                        {"name": "severity", "ns": NS, "value": severity},
                    ]
                    + (
                        [{"name": "evaluated-state", "ns": NS, "value": r["evaluated_state"]}]
                        if r.get("evaluated_state")
                        else []
                    ),
                    "methods": ["TEST"],
                    "types": ["finding"],
                    "subjects": [{"subject-uuid": host_uuid[r["host"]], "type": "inventory-item"}],
                    "relevant-evidence": [
                        {
                            "description": "What the check read (trimmed): "
                            + json.dumps(r["evidence"], sort_keys=True)[:4000]
                        }
                    ],
                    "collected": _ts(data["finished"]),
                }
            )
        if kind == "waived":
            assert waiver is not None
            due = dt.date.fromisoformat(waiver["expires"])
            milestone = (
                f"Waiver expires: fix {rule_id} or approve the exception again "
                f"(approver {waiver['approver']})"
            )
            status = "deviation-approved"
            statement = (
                f"Accepted exception until {waiver['expires']} (approved by "
                f"{waiver['approver']}): {waiver['justification']}"
            )
        else:
            due = audit_day + dt.timedelta(days=REMEDIATION_DAYS[severity])
            milestone = (
                f"Remediation target: {REMEDIATION_DAYS[severity]} days after the audit "
                f"for a {severity} rule"
            )
            status = "open"
            statement = (
                f"{rule_id} fails on {', '.join(hosts)}: {rule['description']}"
                if kind == "fail"
                else f"{rule_id} could not be evaluated on {', '.join(hosts)}: evaluate it "
                "again (make the host reachable) and remediate if it then fails."
            )
        risk_id = uid("risk", *key)
        risks.append(
            {
                "uuid": risk_id,
                "title": f"{rule_id} {rule['title']} ({kind}: {', '.join(hosts)})",
                "description": f"{rule['description']} Why it matters: {rule['rationale']}",
                "statement": statement,
                "props": [
                    {"name": "rule", "ns": NS, "value": rule_id},
                    {"name": "severity", "ns": NS, "value": severity},
                ],
                "status": status,
                "deadline": _end_of(due),
                "remediations": [
                    {
                        "uuid": uid("response", *key),
                        "lifecycle": "planned",
                        "title": f"Apply {rule_id}"
                        + (
                            f" (role {rule['remediation']['role']})"
                            if rule["remediation"].get("role")
                            else ""
                        ),
                        "description": command or "See the rule's remediation notes.",
                        "props": [{"name": "command", "ns": NS, "value": command}]
                        if command
                        else [],
                        "tasks": [
                            {
                                "uuid": uid("milestone", *key),
                                "type": "milestone",
                                "title": milestone,
                                "timing": {"on-date": {"date": _end_of(due)}},
                            }
                        ],
                    }
                ],
                "related-observations": [{"observation-uuid": o} for o in obs_ids],
            }
        )
        if not risks[-1]["remediations"][0]["props"]:
            del risks[-1]["remediations"][0]["props"]
        references = "; ".join(
            f"{fw} {', '.join(ids)}" for fw, ids in sorted(rule["references"].items())
        )
        items_out.append(
            {
                "uuid": uid("item", *key),
                "title": f"{rule_id} {rule['title']}: {kind} on {', '.join(hosts)}",
                "description": (
                    f"{rule['description']} Hosts: {', '.join(hosts)}. "
                    f"Remediation: {command or 'see the rule notes'}. "
                    f"Milestone: {due.isoformat()}."
                ),
                "props": [
                    {"name": "rule", "ns": NS, "value": rule_id},
                    {"name": "severity", "ns": NS, "value": severity},
                    {"name": "state", "ns": NS, "value": kind},
                    {"name": "hosts", "ns": NS, "value": ",".join(hosts)},
                    {"name": "milestone", "ns": NS, "value": due.isoformat()},
                ],
                "related-observations": [{"observation-uuid": o} for o in obs_ids],
                "related-risks": [{"risk-uuid": risk_id}],
                "remarks": f"References: {references or 'none'}. Rule file: {rule['file']}.",
            }
        )
    doc: dict[str, Any] = {
        "plan-of-action-and-milestones": {
            "uuid": uid("document"),
            "metadata": {
                "title": f"m7guard plan of action and milestones: {data['profile']['title']}",
                "last-modified": _ts(data["finished"]),
                "version": data["tool"]["version"],
                "oscal-version": OSCAL_VERSION,
                "remarks": (
                    f"From the audit of {data['inventory']} (profile {data['profile']['id']}) "
                    f"that finished {data['finished']}."
                ),
            },
            "system-id": {"identifier-type": NS, "id": f"m7guard:{data['inventory']}"},
            "local-definitions": {
                "inventory-items": [
                    {
                        "uuid": host_uuid[h["name"]],
                        "description": f"Inventory host {h['name']}",
                        "props": [{"name": "fqdn", "value": h["name"]}],
                    }
                    for h in data["hosts"]
                ]
            },
            "observations": observations,
            "risks": risks,
            "poam-items": items_out,
        }
    }
    if not observations:
        # OSCAL requires at least one item: say that nothing needs action
        body = doc["plan-of-action-and-milestones"]
        del body["observations"], body["risks"]
        body["poam-items"] = [
            {
                "uuid": uid("item", "none"),
                "title": "Nothing to plan",
                "description": (
                    "No rule failed, was in error or was waived in this audit: no action "
                    "or milestone is needed."
                ),
                "props": [{"name": "state", "ns": NS, "value": "none"}],
            }
        ]
    return json.dumps(doc, indent=2) + "\n"
