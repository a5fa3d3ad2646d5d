"""Print the share of requirements satisfied per framework, and of results passed per rule
area (kernel, network, identity, os, ...), before and after hardening.
Usage: python scripts/demo_summary.py BEFORE/results.json AFTER/results.json"""

from __future__ import annotations

import sys
from pathlib import Path

from m7guard.results import Results


def _area_cell(res: Results, area: str) -> str:
    """Passed of the results that were judged (pass or fail) for the rules of one area."""
    rules = {rid for rid, rule in res.data["rules"].items() if rule["area"] == area}
    states = [r["state"] for r in res.results if r["rule"] in rules]
    judged = [s for s in states if s in ("pass", "fail")]
    if not judged:
        return "not judged"
    passed = judged.count("pass")
    return f"{passed}/{len(judged)} ({100 * passed / len(judged):.0f} %)"


def main() -> None:
    before = Results.load(Path(sys.argv[1]))
    after = Results.load(Path(sys.argv[2]))
    print(f"{'framework':<44} {'before':>16} {'after':>16}")
    for fw in after.data["frameworks"]:
        cells = []
        for res in (before, after):
            s = res.framework_summary(fw)
            cells.append(f"{s['satisfied']}/{s['assessed']} ({100 * s['share_satisfied']:.0f} %)")
        title = after.data["frameworks"][fw]["title"][:44]
        print(f"{title:<44} {cells[0]:>16} {cells[1]:>16}")
    print(f"\n{'area (results passed / judged)':<44} {'before':>16} {'after':>16}")
    for area in sorted({rule["area"] for rule in after.data["rules"].values()}):
        cells = [_area_cell(res, area) for res in (before, after)]
        print(f"{area:<44} {cells[0]:>16} {cells[1]:>16}")
    print()
    for label, res in (("before", before), ("after", after)):
        counts = res.counts()
        print(f"results {label:<6}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for host in after.data["hosts"]:
        facts = host.get("facts") or {}
        if facts.get("scope") == "cluster":  # the cluster rules, one result each per cluster
            mine = [r for r in after.results if r["host"] == host["name"]]
            states = ", ".join(f"{k} {v}" for k, v in after.counts(mine).items() if v)
            print(f"{host['name']} (cluster rules, evaluated once on "
                  f"{facts.get('evaluated_on') or 'no CLDB node'}): {len(mine)} results, {states}")
    manual = sum(after.framework_summary(fw)["manual"] for fw in after.data["frameworks"])
    print(f"requirements no rule automates (evidence needed, listed in the HTML report): {manual}")


if __name__ == "__main__":
    main()
