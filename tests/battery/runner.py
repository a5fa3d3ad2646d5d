"""Run breaks on hardened lab nodes in rounds, with one audit per round, and report every way
the battery's claim does not hold.

A round takes at most one break per node (`share=False`): the broken rule must turn as
expected and no other rule of that node may move. With `share=True` a round takes one break
of each of several rules on a node: each broken rule must turn as expected and no rule that
was not broken may move; each property still has a round in which its break is its rule's
only one. `isolated_first` plans the first break of every rule alone on its node and the
rule's further properties in shared rounds: every rule is shown to move alone, and the
battery's audits stay few.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from battery import Break

# Rules that watch other rules' evidence: a break that changes a watched file is also seen by
# them, as designed. Their move to `fail` during a break is counted, not a problem; they must
# still be back to `pass` after the restore (the final audit checks every rule).
WITNESSES = {"AUD-008": "AIDE finds the changed file (it watches the security configuration)"}

# (host, rule) -> (state, message)
Cells = dict[tuple[str, str], tuple[str, str]]
Audit = Callable[[Sequence[str], str], Cells]
Round = list[tuple[str, Break]]


@dataclass
class Report:
    breaks: int = 0
    rules: set[str] = field(default_factory=set)
    rounds: int = 0
    problems: list[str] = field(default_factory=list)
    witnessed: dict[str, int] = field(default_factory=dict)  # witness rule -> breaks it saw
    volatile: dict[tuple[str, str], str] = field(default_factory=dict)  # not compared

    def summary(self) -> str:
        seen = ", ".join(f"{rule} saw {n} ({WITNESSES[rule]})"
                         for rule, n in sorted(self.witnessed.items()))
        apart = ", ".join(f"{rule} on {node} ({why})"
                          for (node, rule), why in sorted(self.volatile.items()))
        return (f"mutation battery: {self.breaks} breaks of {len(self.rules)} rules in "
                f"{self.rounds} audited rounds; {len(self.problems)} problems"
                + (f"; {seen}" if seen else "")
                + (f"; not compared: {apart}" if apart else ""))


def plan_rounds(breaks: Iterable[Break], nodes: Sequence[str], share: bool = False,
                ) -> list[Round]:
    """Rounds of (node, break): without share one break per node a round; with share one
    break per (node, rule) a round, and never two breaks that keep the same file (Break.keeps)
    on one node."""
    pending = [b for b in breaks if any(n in nodes for n in b.nodes)]
    out: list[Round] = []
    while pending:
        taken: Round = []
        busy: set[tuple[str, str]] = set()
        rest = []
        for brk in pending:
            claims = [brk.rule if share else ""] + [f"keeps {k}" for k in sorted(brk.keeps)]
            node = next((n for n in brk.nodes if n in nodes
                         and not any((n, c) in busy for c in claims)), None)
            if node is None:
                rest.append(brk)
                continue
            taken.append((node, brk))
            busy.update((node, c) for c in claims)
        out.append(taken)
        pending = rest
    return out


def _on_nodes(ssh: Callable[[str, str], Any], pairs: Round, step: str) -> list[Any]:
    """Each pair's apply (or restore) command: nodes side by side, in order on one node
    (restores in the reverse order of the applies)."""
    by_node: dict[str, list[int]] = {}
    for i, (node, _) in enumerate(pairs):
        by_node.setdefault(node, []).append(i)
    results: list[Any] = [None] * len(pairs)

    def one_node(indexes: list[int]) -> None:
        for i in (indexes if step == "apply" else reversed(indexes)):
            node, brk = pairs[i]
            results[i] = ssh(node, getattr(brk, step))

    with ThreadPoolExecutor(max_workers=max(1, len(by_node))) as pool:
        list(pool.map(one_node, by_node.values()))
    return results


def isolated_first(breaks: Sequence[Break], nodes: Sequence[str]) -> list[Round]:
    """The first break of every rule alone on its node (one break per node a round), then
    the rule's other breaks sharing rounds (one break per rule and node a round)."""
    seen: set[str] = set()
    first, rest = [], []
    for brk in breaks:
        (rest if brk.rule in seen else first).append(brk)
        seen.add(brk.rule)
    return plan_rounds(first, nodes) + plan_rounds(rest, nodes, share=True)


def run(ssh: Callable[[str, str], Any], audit: Audit, breaks: Sequence[Break],
        nodes: Sequence[str], share: bool = False, rounds: list[Round] | None = None,
        volatile: dict[tuple[str, str], str] | None = None) -> Report:
    """ssh(node, command) -> CompletedProcess; audit(nodes, tag) -> cells of those nodes.
    rounds: a plan of its own (isolated_first); else plan_rounds(breaks, nodes, share).
    volatile: (node, rule) -> why that rule's verdict there follows a live reading no break
    controls; it is not compared (and is not broken on that node). A failed restore ends
    the battery: the node is no longer the hardened one, so later rounds would prove
    nothing."""
    report = Report()
    volatile = volatile or {}
    report.volatile = dict(volatile)
    baseline = audit(nodes, "hardened")

    def was(host: str, rule: str) -> str:
        return baseline.get((host, rule), ("absent", ""))[0]

    plan = rounds if rounds is not None else plan_rounds(breaks, nodes, share)
    for number, round_ in enumerate(plan, 1):
        ready: Round = []
        for node, brk in round_:
            if (node, brk.rule) in volatile:
                report.problems.append(f"{brk.id} on {node}: the rule is volatile there "
                                       f"({volatile[(node, brk.rule)]}); a break of it "
                                       "proves nothing")
                continue
            if was(node, brk.rule) != "pass":
                message = baseline.get((node, brk.rule), ("", ""))[1]
                report.problems.append(f"{brk.id} on {node}: the rule is {was(node, brk.rule)} "
                                       f"on the hardened node ({message}); a break of it "
                                       "proves nothing")
                continue
            ready.append((node, brk))
        applied: Round = []
        for (node, brk), proc in zip(ready, _on_nodes(ssh, ready, "apply"), strict=True):
            if proc.returncode != 0:
                report.problems.append(f"{brk.id} on {node}: the break did not apply "
                                       f"(exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
                ssh(node, brk.restore)
                continue
            applied.append((node, brk))
        if not applied:
            continue
        report.rounds += 1
        broken_nodes = sorted({node for node, _ in applied})
        stuck = False
        try:
            cells = audit(broken_nodes, f"round{number:03d}")
        finally:
            for (node, brk), proc in zip(applied, _on_nodes(ssh, applied, "restore"),
                                         strict=True):
                if proc.returncode != 0:
                    stuck = True
                    report.problems.append(f"{brk.id} on {node}: the restore failed "
                                           f"(exit {proc.returncode}): {proc.stderr[-300:]}")
        for node, brk in applied:
            report.breaks += 1
            report.rules.add(brk.rule)
            state, message = cells.get((node, brk.rule), ("absent", ""))
            if state != brk.expect:
                report.problems.append(f"{brk.id} on {node}: {state} (expected {brk.expect})"
                                       f"{': ' + message if message else ''}")
        for node in broken_nodes:
            targets = {brk.rule for n, brk in applied if n == node}
            names = ", ".join(brk.id for n, brk in applied if n == node)
            moved = []
            for (host, rule), (got, _) in sorted(cells.items()):
                if (host != node or rule in targets or was(host, rule) == got
                        or (host, rule) in volatile):
                    continue
                if rule in WITNESSES and (was(host, rule), got) == ("pass", "fail"):
                    report.witnessed[rule] = report.witnessed.get(rule, 0) + 1
                    continue
                moved.append(f"{rule} {was(host, rule)} -> {got}")
            if moved:
                report.problems.append(f"{names} on {node}: other rules changed: "
                                       + "; ".join(moved))
        if stuck:
            report.problems.append(f"the battery stopped after round {number}: a restore "
                                   "failed, so the nodes are no longer the hardened ones")
            break
    final = audit(nodes, "restored")
    drift = sorted(f"{host} {rule}: {was(host, rule)} -> {got}"
                   for (host, rule), (got, _) in final.items()
                   if was(host, rule) != got and (host, rule) not in volatile)
    if drift:
        report.problems.append("after every restore the nodes differ from the hardened audit: "
                               + "; ".join(drift))
    return report
