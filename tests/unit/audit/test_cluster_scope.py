"""Cluster scope: a rule of the Data Fabric cluster (AUD-010) is evaluated on one CLDB node of
each cluster, reported once under the cluster's name and counted once; a cluster none of whose
audited nodes runs the CLDB is `error`, never a silent `notapplicable`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from m7guard.audit.runner import AuditOptions, _Events, assemble
from m7guard.catalog import load_catalog
from m7guard.checks.support import plugin
from m7guard.checks.support.cluster import plan_clusters
from m7guard.checks.support.snapshot import HostFacts, HostSnapshot, parse_output
from m7guard.checks.support.verdict import NOTAPPLICABLE, EvidenceError
from m7guard.reports import FORMATS, render
from m7guard.results import HostEvent, ResultEvent
from m7guard.validate import validate

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
RULE = "AUD-010"


def _facts(cluster: str = "", roles: tuple[str, ...] = (), mapr: bool = True) -> dict[str, Any]:
    facts = HostFacts(mapr_installed=mapr, mapr_cluster=cluster, mapr_roles=list(roles))
    return facts.to_dict()


def test_the_first_cldb_node_of_each_cluster_evaluates_it() -> None:
    plans = plan_clusters({
        "node3": _facts("c1", ("cldb", "fileserver")),
        "node1": _facts("c1", ("fileserver",)),
        "node2": _facts("c1", ("cldb",)),
        "edge": _facts("c2", ("fileserver",)),
        "bastion": _facts(mapr=False),
        "client": _facts("", ()),
    })
    assert sorted(plans) == ["c1", "c2"]
    assert plans["c1"].nodes == ("node1", "node2", "node3")
    assert plans["c1"].evaluator == "node2" and plans["c1"].reporter == "node2"
    assert plans["c1"].subject == "cluster:c1"
    # no CLDB node audited: nobody evaluates, the first node reports the error
    assert plans["c2"].evaluator is None and plans["c2"].reporter == "edge"


def test_the_snapshot_reads_the_cluster_and_the_roles() -> None:
    m = "@@t"
    out = "\n".join([f"{m} mapr", "installed", "7.8.0", f"{m} mapr-cluster", "c1.lab.test",
                     f"{m} mapr-roles", "fileserver", "cldb", f"{m} end"])
    snap = HostSnapshot("node1", ("all",))
    parse_output(out, m, snap)
    assert snap.facts.mapr_cluster == "c1.lab.test"
    assert snap.facts.mapr_roles == ["cldb", "fileserver"]


def _events(states: dict[str, str]) -> _Events:
    facts = {
        "node1": _facts("c1", ("cldb",)),
        "node2": _facts("c1", ("fileserver",)),
        "node3": _facts(mapr=False),
    }
    return _Events(
        collected={h: [RULE] for h in facts},
        hosts={h: HostEvent(host=h, error=None, groups=["all", "m7_nodes"], facts=f)
               for h, f in facts.items()},
        results=[ResultEvent(host=h, rule=RULE, state=s, message=f"{h} said {s}",
                             evidence={"read_on": h}, duration=0.1)
                 for h, s in states.items()],
    )


def _assemble(states: dict[str, str]):
    catalog = load_catalog(POLICIES)
    return assemble(AuditOptions(inventory=Path("hosts.yml"), profile="audit"), catalog,
                    catalog.profile("audit"), [], _events(states),
                    started="2026-12-05T00:00:00Z", finished="2026-12-05T00:00:01Z")


def test_a_cluster_rule_is_reported_once_under_the_cluster() -> None:
    results = _assemble({"node1": "fail", "node2": "notapplicable", "node3": "notapplicable"})
    mine = [r for r in results.results if r["rule"] == RULE]
    assert [(r["host"], r["state"], r.get("evaluated_on")) for r in mine] == [
        ("cluster:c1", "fail", "node1"),
        ("node3", "notapplicable", None),  # no Data Fabric there: a node's own verdict
    ]
    assert mine[0]["evidence"] == {"read_on": "node1"}
    cluster = next(h for h in results.data["hosts"] if h["name"] == "cluster:c1")
    assert cluster["facts"] == {"scope": "cluster", "cluster": "c1", "evaluated_on": "node1",
                                "nodes": ["node1", "node2"]}
    # counted once: one failing result, one not-satisfied requirement set
    assert results.counts(mine)["fail"] == 1
    statuses = {s.id: s for s in results.requirement_statuses("pci_dss_4")}
    assert statuses["10.5.1"].status == "not-satisfied"


def test_every_report_renders_the_cluster(tmp_path: Path) -> None:
    results = _assemble({"node1": "pass", "node2": "notapplicable", "node3": "notapplicable"})
    written = render(results, FORMATS, tmp_path)
    for fmt in ("json", "html", "junit", "sarif", "oscal", "prom"):
        assert "cluster:c1" in written[fmt].read_text(), fmt


class _Ctx:
    def __init__(self, snapshots: dict[str, HostSnapshot]) -> None:
        self.snapshots = snapshots

    cluster_plans = plugin.AuditContext.cluster_plans
    _lock = plugin.threading.Lock()


def _snap(name: str, cluster: str, roles: tuple[str, ...]) -> HostSnapshot:
    snap = HostSnapshot(name, ("all",))
    snap.facts.mapr_installed, snap.facts.mapr_cluster = True, cluster
    snap.facts.mapr_roles = list(roles)
    return snap


def test_the_check_runs_on_the_evaluator_alone() -> None:
    snaps = {"node1": _snap("node1", "c1", ("cldb",)), "node2": _snap("node2", "c1", ())}
    ctx = _Ctx(snaps)
    plugin._cluster_applicability(ctx, snaps["node1"])  # runs: no exception
    with pytest.raises(pytest.skip.Exception) as skipped:
        plugin._cluster_applicability(ctx, snaps["node2"])
    assert str(skipped.value.msg) == (
        f"{NOTAPPLICABLE}a rule of cluster c1, evaluated once, on node1")


def test_a_cluster_without_an_audited_cldb_node_is_an_error() -> None:
    snaps = {"node1": _snap("node1", "c1", ("fileserver",)), "node2": _snap("node2", "c1", ())}
    with pytest.raises(EvidenceError, match="no audited node of cluster c1 runs the CLDB"):
        plugin._cluster_applicability(_Ctx(snaps), snaps["node1"])
    with pytest.raises(pytest.skip.Exception):
        plugin._cluster_applicability(_Ctx(snaps), snaps["node2"])


def test_a_node_whose_cluster_is_unknown_is_an_error() -> None:
    snaps = {"node1": _snap("node1", "", ("cldb",))}
    with pytest.raises(EvidenceError, match=r"mapr-clusters\.conf names no cluster"):
        plugin._cluster_applicability(_Ctx(snaps), snaps["node1"])


def test_a_cluster_rule_needs_the_condition_mapr_installed(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    path = policies / "rules/audit_logging/AUD-010.yml"
    path.write_text(path.read_text().replace("  conditions: [mapr_installed]\n", ""))
    _, problems = validate(policies)
    assert any("AUD-010" in str(p) and "needs the condition mapr_installed" in str(p)
               for p in problems), problems
