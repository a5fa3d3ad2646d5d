"""The audit checks groups of hosts in forked worker processes: the same results as one process,
whole event lines, balanced groups, and no worker left behind when the audit gives up."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from m7guard.audit import runner
from m7guard.audit.errors import AuditError
from m7guard.audit.runner import AuditOptions, run_audit
from m7guard.checks.support.plugin import AuditContext, partition
from m7guard.results import ResultEvent

REPO = Path(__file__).resolve().parents[3]


def test_partition_balances_the_work_and_leaves_no_group_empty() -> None:
    weights = {"node1": 60, "node2": 60, "node3": 60, "client1": 5, "kdc": 5, "vm1": 70}
    groups = partition(weights, 2)
    assert sorted(h for g in groups for h in g) == sorted(weights)
    loads = sorted(sum(weights[h] for h in g) for g in groups)
    assert loads == [130, 130]
    assert groups == [["vm1", "node3"], ["node1", "node2", "client1", "kdc"]]
    assert partition(weights, 2) == groups  # every process computes the same split
    assert partition({"a": 1, "b": 1}, 8) == [["a"], ["b"]]
    assert partition({}, 4) == []


def _hosts_inventory(path: Path, names: list[str]) -> Path:
    """Several names for this machine (ansible local connection, read-only checks)."""
    lines = ["---", "all:", "  children:", "    m7_nodes:", "      hosts:"]
    for name in names:
        lines += [f"        {name}:", "          ansible_connection: local"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cells(results: Any) -> dict[tuple[str, str], tuple[str, str, str]]:
    return {
        (r["host"], r["rule"]): (r["state"], r["message"], json.dumps(r["evidence"]))
        for r in results.results
    }


@pytest.fixture
def frozen_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every audit of this test reads one frozen host state (_frozen_host.py): the machine
    read once, not at each audit, so a sysctl changing between two audits cannot make them
    differ."""
    frozen = tmp_path / "frozen-snapshot.txt"
    here = str(Path(__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p _frozen_host")
    monkeypatch.setenv("M7G_FROZEN_SNAPSHOT", str(frozen))
    return frozen


def test_forked_workers_give_the_results_of_one_process(tmp_path: Path, frozen_host: Path) -> None:
    """One process and three forked workers, on the same frozen input, give the same results."""
    inventory = _hosts_inventory(tmp_path / "hosts.yml", ["alpha", "beta", "gamma", "delta"])

    def audit(workers: int) -> tuple[Any, str]:
        log_dir = tmp_path / f"log{workers}"
        results = run_audit(
            AuditOptions(
                inventory=inventory, workers=workers, profile="kernel", policies=REPO / "policies"
            ),
            log_dir=log_dir,
        )
        return results, (log_dir / "pytest.log").read_text()

    one, one_log = audit(1)
    assert frozen_host.is_file()  # the input both audits read
    frozen = frozen_host.read_text()
    three, three_log = audit(3)
    assert frozen_host.read_text() == frozen
    # the machine was read once, by the first snapshot; eight snapshots parsed that read
    assert len(frozen_host.with_suffix(".reads").read_text().splitlines()) == 1
    assert "worker processes" not in one_log
    assert "m7guard: the checks ran in 3 worker processes" in three_log
    workers = [ln for ln in three_log.splitlines() if ln.startswith("m7guard: ") and " of " in ln]
    assert len(workers) == 3
    assert sorted(ln.split("checks of ")[1].split(":")[0] for ln in workers) == [
        "alpha, gamma",  # equal work: by name, each to the lightest group
        "beta",
        "delta",
    ]
    # each worker's output whole, one after another, once all have ended
    lines = three_log.splitlines()
    for hosts, count in (("alpha, gamma", 32), ("beta", 16), ("delta", 16)):
        header = re.compile(rf"-+ worker: {hosts} -+")
        start = next(i for i, ln in enumerate(lines) if header.fullmatch(ln))
        progress = lines[start + 1]
        assert len(progress) == count and set(progress) <= set(".sFE"), progress
        end = lines.index(f"m7guard: {count} checks of {hosts}: worker exit 1")
        assert start < end
        summary = r"\d+ failed(, \d+ passed)?(, \d+ skipped)?, \d+ deselected in [\d.]+s"
        assert re.fullmatch(summary, lines[end - 1]), lines[end - 1]
    assert len(one.results) == 4 * 16
    assert _cells(three) == _cells(one)
    assert [h["name"] for h in three.data["hosts"]] == [h["name"] for h in one.data["hosts"]]


class _Config:
    def __init__(self, events: Path) -> None:
        self.options = {
            "m7guard_policies": str(REPO / "policies"),
            "m7guard_profile": "baseline",
            "m7guard_workers": 4,
            "m7guard_fork": True,
            "m7guard_events": str(events),
        }

    def getoption(self, name: str) -> Any:
        return self.options[name]


def test_event_lines_stay_whole_when_processes_write_at_once(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    ctx = AuditContext(_Config(events))  # type: ignore[arg-type]
    evidence = "x" * 100_000  # far over any write buffer
    pids = []
    for worker in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for n in range(25):
                    ctx.emit(ResultEvent(host=f"w{worker}", rule=f"R-{n:03}", state="pass",
                                         message="", evidence={"x": evidence}, duration=0.0))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 for pid in pids)
    lines = events.read_bytes().split(b"\n")
    assert lines[-1] == b""
    got = [json.loads(line) for line in lines[:-1]]
    expected = [(w, n) for w in range(4) for n in range(25)]
    assert sorted((int(e["host"][1:]), int(e["rule"][2:])) for e in got) == expected
    assert all(e["evidence"] == {"x": evidence} for e in got)


_FORKS_AND_HANGS = """
import os, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(300)
    os._exit(0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(pid))
time.sleep(300)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # killed, waiting for its new parent to reap it


def test_a_timeout_ends_the_workers_too(
    monkeypatch: pytest.MonkeyPatch, local_inventory: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "worker.pid"
    monkeypatch.setattr(
        runner,
        "_pytest_command",
        lambda *_: [sys.executable, "-c", _FORKS_AND_HANGS, str(pid_file)],
    )
    opts = AuditOptions(inventory=local_inventory, policies=REPO / "policies", timeout=3)
    with pytest.raises(AuditError, match="did not finish within 3 s"):
        run_audit(opts)
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker), f"worker {worker} still runs after the audit gave up"
