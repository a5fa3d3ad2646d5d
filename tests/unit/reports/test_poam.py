"""OSCAL POA&M: one item per rule and host set that needs action, parsed by trestle."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

from trestle.oscal.poam import PlanOfActionAndMilestones

from m7guard.reports import poam, render
from m7guard.results import Results

from .conftest import make_results


def _parse(results: Results, tmp_path: Path) -> PlanOfActionAndMilestones:
    path = tmp_path / "poam.json"
    path.write_text(poam.render(results))
    model = PlanOfActionAndMilestones.oscal_read(path)
    assert model is not None
    return model


def _prop(obj: Any, name: str) -> str:
    return next(p.value for p in obj.props if p.name == name)


def _val(x: Any) -> Any:
    """The plain value of a trestle token (enum or root models nested)."""
    while hasattr(x, "root") or hasattr(x, "value"):
        x = x.root if hasattr(x, "root") else x.value
    return x


def _items(model: PlanOfActionAndMilestones) -> dict[tuple[str, str], Any]:
    return {(_prop(i, "rule"), _prop(i, "state")): i for i in model.poam_items}


def _spread(results: Results) -> Results:
    """KERN-001 failing on node1 and node2, erroring on ghost, passing on node3; KERN-014
    waived on node2 (one waiver) and node3 (another)."""
    data = copy.deepcopy(results.data)
    data["hosts"].append(
        {"name": "node3", "reachable": True, "error": None, "groups": ["all"], "facts": {}}
    )
    rows = data["results"]
    rows[0] |= {"state": "fail", "message": "kptr_restrict is 0"}
    other = copy.deepcopy(rows[3]["waiver"]) | {"hosts": "node3", "expires": "2026-03-31"}
    rows += [
        {
            "host": "node3",
            "rule": "KERN-001",
            "state": "pass",
            "message": "",
            "evidence": {},
            "duration": 0.0,
            "waiver": None,
        },
        copy.deepcopy(rows[3]) | {"host": "node3", "waiver": other},
    ]
    return Results.validated(data)


def test_items_per_rule_and_host_set(results: Results, tmp_path: Path) -> None:
    model = _parse(_spread(results), tmp_path)
    items = model.poam_items
    by_key = {(_prop(i, "rule"), _prop(i, "state"), _prop(i, "hosts")) for i in items}
    assert by_key == {
        ("KERN-001", "fail", "node1,node2"),
        ("KERN-001", "error", "ghost"),
        ("KERN-014", "waived", "node2"),
        ("KERN-014", "waived", "node3"),
        ("KERN-014", "error", "ghost"),
    }
    assert len(items) == 5
    # a passing result (node3 KERN-001, node1 KERN-001 in the fixture) makes no item and no
    # observation
    observed = {o.title for o in model.observations}
    assert not any("pass" in t or "notapplicable" in t for t in observed)


def test_no_item_for_passing_rules(results: Results, tmp_path: Path) -> None:
    data = copy.deepcopy(results.data)
    data["results"] = [r for r in data["results"] if r["state"] in ("pass", "notapplicable")]
    data["waivers"] = []
    model = _parse(Results.validated(data), tmp_path)
    (item,) = model.poam_items
    assert item.title == "Nothing to plan"
    assert [p.name for p in item.props] == ["state"] and _prop(item, "state") == "none"
    assert model.risks is None and model.observations is None


def test_remediation_command_and_failing_milestone(results: Results, tmp_path: Path) -> None:
    model = _parse(_spread(results), tmp_path)
    item = _items(model)[("KERN-001", "fail")]
    (link,) = item.related_risks
    risk = next(r for r in model.risks if r.uuid == link.risk_uuid)
    (response,) = risk.remediations
    assert _prop(response, "command") == (
        "ansible-playbook -i inventories/lab/hosts.yml playbooks/site.yml "
        "--tags KERN-001 --limit node1,node2"
    )
    assert _val(risk.status) == "open"
    (task,) = response.tasks
    assert _val(task.type) == "milestone"
    # KERN-001 is high: 90 days after the audit (finished 2025-01-01)
    due = dt.date(2025, 1, 1) + dt.timedelta(days=poam.REMEDIATION_DAYS["high"])
    assert task.timing.on_date.date.date() == due
    assert risk.deadline.date() == due
    # observations of the item: one per host, each linked from the item and the risk
    linked = {o.observation_uuid for o in item.related_observations}
    assert linked == {o.observation_uuid for o in risk.related_observations}
    titles = {o.title for o in model.observations if o.uuid in linked}
    assert titles == {"KERN-001 on node1: fail", "KERN-001 on node2: fail"}


def test_waived_milestone_is_the_waiver_expiry(results: Results, tmp_path: Path) -> None:
    model = _parse(_spread(results), tmp_path)
    waived = [i for i in model.poam_items if _prop(i, "state") == "waived"]
    expiry = {_prop(i, "hosts"): _prop(i, "milestone") for i in waived}
    assert expiry == {"node2": "2030-01-01", "node3": "2026-03-31"}
    for item in waived:
        risk = next(r for r in model.risks if r.uuid == item.related_risks[0].risk_uuid)
        (task,) = risk.remediations[0].tasks
        assert task.timing.on_date.date.date().isoformat() == _prop(item, "milestone")
        assert _val(risk.status) == "deviation-approved"


def test_preflight_rule_without_role_gets_its_notes(results: Results) -> None:
    data = copy.deepcopy(results.data)
    data["rules"]["KERN-001"]["remediation"] = {
        "role": None,
        "tags": [],
        "command": "Attach an instance profile.",
        "notes": "Attach an instance profile.",
    }
    text = poam.render(Results.validated(data))
    commands = [
        p["value"]
        for r in json.loads(text)["plan-of-action-and-milestones"]["risks"]
        if r["props"][0]["value"] == "KERN-001"
        for resp in r["remediations"]
        for p in resp.get("props", [])
        if p["name"] == "command"
    ]
    assert "Attach an instance profile." in commands
    assert not any("--tags KERN-001" in c for c in commands)


def test_poam_is_a_format_and_renders_twice_the_same(results: Results, tmp_path: Path) -> None:
    written = render(make_results(), ["poam"], tmp_path, write_json=False)
    assert written["poam"].name == "poam.json"
    assert written["poam"].read_text() == poam.render(results)
