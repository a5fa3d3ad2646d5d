"""Print the share of requirements satisfied per framework, before and after hardening.
Usage: python scripts/demo_summary.py BEFORE/results.json AFTER/results.json"""

from __future__ import annotations

import sys
from pathlib import Path

from m7guard.results import Results


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
    for label, res in (("before", before), ("after", after)):
        counts = res.counts()
        print(f"results {label:<6}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    manual = sum(after.framework_summary(fw)["manual"] for fw in after.data["frameworks"])
    print(f"requirements no rule automates (evidence needed, listed in the HTML report): {manual}")


if __name__ == "__main__":
    main()
