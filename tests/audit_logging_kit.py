"""Helpers of the audit_logging tests, shared by node2's story (test_audit_logging.py) and
vm1's (test_vm1.py): the role's plays, the AUD audit, the Data Fabric layout with the
recording `maprcli` stand-in (tests/standin/maprcli.py), and what
each story must show whatever the node."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from m7guard.results import Results

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "audit_logging"
MAPRCLI_STANDIN = ROOT / "tests" / "standin" / "maprcli.py"
HADOOP_STANDIN = ROOT / "tests" / "standin" / "hadoop"
EXPORTS_STANDIN = ROOT / "tests" / "standin" / "exports"
MAPRLOGIN_STANDIN = ROOT / "tests" / "standin" / "maprlogin.py"
TICKET_STANDIN = ROOT / "tests" / "standin" / "maprticket_etl.json"
LONG_TICKET = "/tmp/maprticket_1001"  # tests/standin/data_fabric.yml too
HADOOP_CONF = "/opt/mapr/hadoop/hadoop-3.3.5/etc/hadoop"  # tests/standin/data_fabric.yml too
COLLECTOR = "collector"
RULES = [f"AUD-{n:03d}" for n in range(1, 11)]
KERNEL_RULES = ["AUD-001", "AUD-003", "AUD-004"]  # the host kernel's, on a container
REBOOT_OK = json.dumps({"audit_logging_reboot_ok": True})
RECORDER = "/var/lib/datafabric-standin/calls.jsonl"
MUTATING = (["config", "save"], ["audit", "cluster"], ["audit", "data"])
DOCUMENTED = [
    ["config", "save", "-values", '{"mfs.feature.audit.support":"1"}'],
    ["audit", "cluster", "-enabled", "true"],
    ["audit", "data", "-enabled", "true", "-maxsize", "32", "-retention", "365"],
]
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class Run:
    rc: int
    out: str

    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]),
                   "failed": int(m[4])}
            for m in RECAP.findall(self.out)
        }


@dataclass
class Story:
    """What one node went through with the audit_logging role: node2's (test_audit_logging.py)
    or vm1's (test_vm1.py)."""
    node: str
    fresh: Results
    converged: Results
    later: Results  # vm1: after a reboot; node2: after a file AIDE watches was added
    first: Run
    second: Run
    facts: dict
    calls_after_first: list[list[str]]
    calls_after_second: list[list[str]]
    marker: str
    collector_logs: str
    timings: dict[str, float]
    # node2 only: --check and bad input on the fresh node, and what they left
    check_mode: Run | None = None
    bad_action: Run | None = None
    bad_retention: Run | None = None
    snapshots: dict[str, str] = field(default_factory=dict)
    # node2 only: reruns with a file AIDE watches added outside them (refused, then accepted
    # with audit_logging_aide_update), and what the node held after each
    reruns: dict[str, Run] = field(default_factory=dict)
    aide_state: dict[str, str] = field(default_factory=dict)
    accepted: Results | None = None  # the AUD audit after the update accepted the file
    # vm1 only: a kernel audit record, and the rules after a reboot
    sudoers_record: str = ""
    sudoers_forwarded: bool = False
    loaded_after_reboot: str = ""
    status_after_reboot: str = ""
    persisted_after_reboot: str = ""


def playbook(lab: Any, *args: str) -> Run:
    proc = lab.playbook(*args, check=False, timeout=1500)
    return Run(proc.returncode, proc.stdout + proc.stderr)


def audit(lab: Any, out: Path, limit: str, *options: str, profile: str = "audit") -> Results:
    """The audit of limit with profile (by default the AUD rules: what the role enforces)."""
    proc = lab.m7guard("audit", "-i", str(lab.inventory), "--limit", limit, "--out", str(out),
                       "--profile", profile, "--format", "json", *options, check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return Results.load(out / "results.json")


def mapr_layout(lab: Any, node: str) -> None:
    """The stand-in Data Fabric layout with the recording maprcli stand-in, as a CLDB node,
    the stand-in's Hadoop SSL files with the credential stores, an NFSv3 gateway with the
    exports file as shipped, and the maprlogin stand-in with a 90-day ticket of a user (one
    SSH round trip, no module calls)."""
    recorder = base64.b64encode(MAPRCLI_STANDIN.read_bytes()).decode()
    hadoop = "".join(
        f"echo {base64.b64encode((HADOOP_STANDIN / name).read_bytes()).decode()} | base64 -d "
        f"> {HADOOP_CONF}/{name}; " for name in ("ssl-server.xml", "ssl-client.xml"))
    script = (
        "set -e; mkdir -p /opt/mapr/bin /opt/mapr/conf /opt/mapr/roles; "
        "touch /opt/mapr/roles/cldb /opt/mapr/roles/fileserver /opt/mapr/roles/nfs; "
        "echo 7.8.0.0.test-double > /opt/mapr/MapRBuildVersion; "
        f"echo '{node}.lab.test secure=true {node}:7222' > /opt/mapr/conf/mapr-clusters.conf; "
        "for f in maprserverticket cldb.key ssl_keystore.p12; do "
        "echo \"test double of $f, not a key\" > /opt/mapr/conf/$f; "
        "chmod 0600 /opt/mapr/conf/$f; done; "
        f"echo {recorder} | base64 -d > /opt/mapr/bin/maprcli; chmod 0755 /opt/mapr/bin/maprcli; "
        f"mkdir -p {HADOOP_CONF}; {hadoop}"
        f"echo {base64.b64encode(EXPORTS_STANDIN.read_bytes()).decode()} | base64 -d "
        "> /opt/mapr/conf/exports; "
        f"echo {base64.b64encode(MAPRLOGIN_STANDIN.read_bytes()).decode()} | base64 -d "
        "> /opt/mapr/bin/maprlogin; chmod 0755 /opt/mapr/bin/maprlogin; "
        f"echo {base64.b64encode(TICKET_STANDIN.read_bytes()).decode()} | base64 -d "
        f"> {LONG_TICKET}; chmod 0600 {LONG_TICKET}; "
        "for f in maprkeycreds.jceks maprtrustcreds.jceks; do "
        "echo 'stand-in credential store' > /opt/mapr/conf/$f; chmod 0600 /opt/mapr/conf/$f; "
        "done; "
        "rm -rf /var/lib/datafabric-standin"
    )
    lab.ssh(node, script)


def calls(lab: Any, node: str) -> list[list[str]]:
    out = lab.ssh(node, f"cat {RECORDER} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def mutating(recorded: list[list[str]]) -> list[list[str]]:
    return [c for c in recorded if c[:2] in MUTATING]


def wait_for(lab: Any, node: str, command: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        proc = lab.ssh(node, command, check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc.stdout if proc.returncode == 0 else ""
        time.sleep(2)


class Laps:
    """Seconds per step of a story, printed with it."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.mark = time.monotonic()

    def __call__(self, name: str) -> None:
        self.t[name] = round(time.monotonic() - self.mark, 1)
        self.mark = time.monotonic()


def converge(lab: Any, node: str, tmp: pytest.TempPathFactory, lap: Laps) -> dict:
    """The role twice on a node whose fresh audit is taken, then the AUD audit of the result
    and a record forwarded to the collector."""
    play = str(FIXTURES / "converge.yml")
    first = playbook(lab, play, "--limit", node, "-e", REBOOT_OK)
    assert first.rc == 0, first.out[-5000:]
    lap("converge")
    calls_first = calls(lab, node)
    second = playbook(lab, play, "--limit", node, "-e", REBOOT_OK)
    lap("second run")
    calls_second = calls(lab, node)
    facts = json.loads(lab.ssh(node, "cat /run/audit_logging_facts.json").stdout)
    # Let chrony select its source (a few seconds with iburst) before the audit judges it.
    lab.ssh(node, "chronyc waitsync 60 0 0 1 >/dev/null", check=False, timeout=180)
    converged = audit(lab, tmp.mktemp(f"converged-{node}"), node)
    lap("audit after the play")
    marker = f"m7guard-forward-{node}-{secrets.token_hex(6)}"
    lab.ssh(node, f"logger -t m7guard-test {marker}")
    wait_for(lab, COLLECTOR, f"grep -rqF {marker} /var/log/remote", 60)
    return {"first": first, "second": second, "calls_after_first": calls_first,
            "calls_after_second": calls_second, "facts": facts, "converged": converged,
            "marker": marker}


def result(results: Results, node: str, rule: str) -> dict:
    """The node's result of the rule; for a cluster rule (AUD-010), its cluster's result when
    the node evaluated it."""
    return next(r for r in results.results if r["rule"] == rule
                and node in (r["host"], r.get("evaluated_on")))


# --- what every node's story must show ---------------------------------------------------


def assert_forwarded(story: Story) -> None:
    assert story.marker in story.collector_logs, f"{story.node}'s record did not reach it"


def assert_documented_commands_issued_once(story: Story) -> None:
    assert mutating(story.calls_after_first) == DOCUMENTED
    assert mutating(story.calls_after_second) == DOCUMENTED
    reads = story.calls_after_second[len(story.calls_after_first):]
    assert reads, "the second run did not even read the state"
    assert not mutating(reads)
    assert story.facts["audit_logging_mapr"]["commands"] == []


def assert_second_run_changes_nothing(story: Story) -> None:
    recap = story.second.recap()
    assert story.second.rc == 0, story.second.out[-3000:]
    assert set(recap) == {story.node}
    assert recap[story.node]["changed"] == 0, recap
    assert recap[story.node]["failed"] == 0
    assert story.first.recap()[story.node]["changed"] > 0
