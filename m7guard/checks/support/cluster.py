"""Cluster scope: the rules evaluated once per Data Fabric cluster, not once per node.

A rule with `scope: cluster` reads the cluster through `maprcli` (volumes, the cluster's ACL,
security policies): every node of the cluster would give the same answer, so the audit asks
one node and reports the verdict once, under the cluster's name (`cluster:NAME`).

Which node: of the audited, reachable nodes whose mapr-clusters.conf names the cluster first
(the node's own cluster) and that run the CLDB (`/opt/mapr/roles/cldb`), the first by
inventory name. The same inventory gives the same node in every audit. A cluster none of
whose audited nodes runs the CLDB cannot be evaluated: its cluster rules are `error`, reported
on its first node's behalf. This module is the one definition of that choice: the checks'
plugin uses it to decide where the checks run, the audit to fold the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLDB_ROLE = "cldb"
PREFIX = "cluster:"


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    nodes: tuple[str, ...]
    evaluator: str | None  # the CLDB node that runs the cluster checks; None: no such node

    @property
    def reporter(self) -> str:
        """The node whose result is the cluster's: the evaluator, else the first node (whose
        check reports that the cluster cannot be evaluated)."""
        return self.evaluator or self.nodes[0]

    @property
    def subject(self) -> str:
        """The name results are reported under."""
        return PREFIX + self.name


def plan_clusters(facts_by_host: Mapping[str, Mapping[str, Any]]) -> dict[str, ClusterPlan]:
    """Cluster name -> its plan, from each reachable host's facts (HostFacts.to_dict())."""
    members: dict[str, list[str]] = {}
    cldb: dict[str, list[str]] = {}
    for host in sorted(facts_by_host):
        facts = facts_by_host[host]
        name = str(facts.get("mapr_cluster") or "")
        if not facts.get("mapr_installed") or not name:
            continue
        members.setdefault(name, []).append(host)
        if CLDB_ROLE in (facts.get("mapr_roles") or ()):
            cldb.setdefault(name, []).append(host)
    return {
        name: ClusterPlan(name, tuple(nodes), (cldb.get(name) or [None])[0])
        for name, nodes in members.items()
    }


def cluster_of(plans: Mapping[str, ClusterPlan], host: str) -> ClusterPlan | None:
    for plan in plans.values():
        if host in plan.nodes:
            return plan
    return None
