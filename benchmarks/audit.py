"""Wall time of `m7guard audit` over the lab: one node, every container node, and, as the peer,
every container node read one at a time (--workers 1).

    .venv/bin/python benchmarks/audit.py [--inventory inventories/lab/hosts.yml] [--repeat 3]

Prints per run the wall time and, per host, the time of its one-round-trip snapshot and of its
checks, then the ratios: all containers / one node (target <= 2) and sequential / parallel.
The lab must be up (`m7guard lab up`); the audit only reads the nodes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

from m7guard.audit.runner import AuditOptions, run_audit
from m7guard.results import Results

ROOT = Path(__file__).resolve().parents[1]


def once(inventory: Path, limit: str, workers: int) -> tuple[float, Results]:
    started = time.perf_counter()
    results = run_audit(
        AuditOptions(inventory=inventory, limit=limit, workers=workers, policies=ROOT / "policies")
    )
    return time.perf_counter() - started, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=ROOT / "inventories/lab/hosts.yml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--node", default="node1")
    args = parser.parse_args(argv)
    if not args.inventory.is_file():
        print(
            f"{args.inventory} not found: bring the lab up with `m7guard lab up`", file=sys.stderr
        )
        return 1
    hosts = yaml.safe_load(args.inventory.read_text())["all"]["hosts"]
    containers = sorted(h for h, v in hosts.items() if v.get("m7guard_lab_kind") == "container")
    runs = [
        ("one node", args.node, 4),
        (f"{len(containers)} container nodes", ",".join(containers), 4),
        (f"{len(containers)} container nodes, --workers 1 (peer)", ",".join(containers), 1),
    ]
    best: dict[str, float] = {}
    for name, limit, workers in runs:
        walls = []
        last = None
        for _ in range(args.repeat):
            wall, last = once(args.inventory, limit, workers)
            walls.append(wall)
        assert last is not None
        best[name] = min(walls)
        print(
            f"\n{name}: best {min(walls):.2f} s, median {statistics.median(walls):.2f} s "
            f"over {args.repeat} runs ({len(last.results)} results)"
        )
        checks = {h: sum(r["duration"] for r in rows) for h, rows in last.by_host().items()}
        for host in last.data["hosts"]:
            print(
                f"  {host['name']:<10} snapshot {host.get('duration', 0.0):.3f} s, "
                f"checks {checks[host['name']]:.3f} s, reachable {host['reachable']}"
            )
    one, many, seq = (best[n] for n, _, _ in runs)
    print(f"\nall containers / one node: {many / one:.2f} (target <= 2.00)")
    print(f"sequential peer / parallel: {seq / many:.2f}")
    print(f"per host (all containers): {many / len(containers):.2f} s (target <= 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
