"""The audit_logging role and the AUD-* checks on real lab nodes.

vm1 (its own kernel) and node2 (a container sharing the host's kernel) are replaced with
fresh nodes, given a Data Fabric layout with the recording `maprcli` test double
(tests/fixtures/audit_logging/maprcli_recorder.py), and audited: every AUD-* check fails on
vm1 (those of the host kernel are notapplicable on node2). The role then runs once for real
(audit_logging_reboot_ok, so the rules become immutable) and once more, which must change
nothing; the audit passes. Around that: `--check` on the fresh node2 and bad inputs change
nothing; the lab's collector node receives forwarded records over TCP; touching
/etc/sudoers on vm1 leaves an audit record with the rule's key; after a reboot of vm1 the
rules are loaded again. node2 is replaced again at the end, so later tests get a clean node.

Each node has its own story (told once per node, on first use): vm1's tests carry
the vm marker and run beside the container tests in `make test` (scripts/suite.py).

Nothing here runs auditctl in a container: the role never does, and the checks that would
are notapplicable there.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from battery import breaks_of
from battery.runner import Cells
from battery.runner import run as battery_run
from labkit import configure_collector

from m7guard.audit.results import Results

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "audit_logging"
VM, CONTAINER, COLLECTOR = "vm1", "node2", "collector"
RULES = [f"AUD-{n:03d}" for n in range(1, 11)]
KERNEL_RULES = ["AUD-001", "AUD-003", "AUD-004"]  # the host kernel's, on a container
REBOOT_OK = json.dumps({"audit_logging_reboot_ok": True})
RECORDER = "/var/lib/maprcli-recorder/calls.jsonl"
MUTATING = (["config", "save"], ["audit", "cluster"], ["audit", "data"])
DOCUMENTED = [
    ["config", "save", "-values", '{"mfs.feature.audit.support":"1"}'],
    ["audit", "cluster", "-enabled", "true"],
    ["audit", "data", "-enabled", "true", "-maxsize", "32", "-retention", "365"],
]
AIDE_PROBE = "/etc/m7guard-aide-probe"
# What the role manages on a node, printed so that two snapshots show any change.
SNAPSHOT = (
    "dpkg-query -W -f '${Package} ${Status}\\n' auditd chrony aide rsyslog 2>&1; "
    "for p in /etc/audit /etc/aide /etc/chrony /etc/default/chrony /etc/rsyslog.d "
    "/etc/systemd/journald.conf.d /etc/systemd/system/auditd.service.d /var/lib/aide "
    "/var/log/audit /etc/systemd/system/audit-logging-aide-check.timer; do "
    "ls -la --time-style=+%s.%N \"$p\" 2>&1; done; "
    "find /var/log -maxdepth 1 -type f -printf '%m %u %g %p\\n' | sort; "
    "systemctl is-active auditd chrony rsyslog 2>&1; true"
)
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
    """What one node went through; vm1 and node2 each have their own (see story())."""
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
    # vm1 only: a kernel audit record, and the rules after a reboot
    sudoers_record: str = ""
    sudoers_forwarded: bool = False
    loaded_after_reboot: str = ""
    status_after_reboot: str = ""
    persisted_after_reboot: str = ""


def _playbook(lab, *args: str) -> Run:
    proc = lab.playbook(*args, check=False, timeout=1500)
    return Run(proc.returncode, proc.stdout + proc.stderr)


def _audit(lab, out: Path, limit: str) -> Results:
    """The AUD rules (profile audit): what this module's role enforces and its tests read.
    The container battery (test_site.py) audits every rule."""
    proc = lab.m7guard("audit", "-i", str(lab.inventory), "--limit", limit, "--out", str(out),
                       "--profile", "audit", "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return Results.load(out / "results.json")


def _mapr_layout(lab, node: str) -> None:
    """Data Fabric layout with the recording maprcli (one SSH round trip, no module calls)."""
    recorder = base64.b64encode((FIXTURES / "maprcli_recorder.py").read_bytes()).decode()
    script = (
        "set -e; mkdir -p /opt/mapr/bin /opt/mapr/conf; "
        "echo 7.8.0.0.test-double > /opt/mapr/MapRBuildVersion; "
        f"echo '{node}.lab.test secure=true {node}:7222' > /opt/mapr/conf/mapr-clusters.conf; "
        "for f in maprserverticket cldb.key ssl_keystore.p12; do "
        "echo \"test double of $f, not a key\" > /opt/mapr/conf/$f; "
        "chmod 0600 /opt/mapr/conf/$f; done; "
        f"echo {recorder} | base64 -d > /opt/mapr/bin/maprcli; chmod 0755 /opt/mapr/bin/maprcli; "
        "rm -rf /var/lib/maprcli-recorder"
    )
    lab.ssh(node, script)


def _calls(lab, node: str) -> list[list[str]]:
    out = lab.ssh(node, f"cat {RECORDER} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _mutating(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[:2] in MUTATING]


def _wait_for(lab, node: str, command: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        proc = lab.ssh(node, command, check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc.stdout if proc.returncode == 0 else ""
        time.sleep(2)


class _Laps:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}
        self.mark = time.monotonic()

    def __call__(self, name: str) -> None:
        self.t[name] = round(time.monotonic() - self.mark, 1)
        self.mark = time.monotonic()


def _converge(lab, node: str, tmp: pytest.TempPathFactory, lap: _Laps) -> dict:
    """The role twice on a node whose fresh audit is taken, then the audit of the result."""
    converge = str(FIXTURES / "converge.yml")
    first = _playbook(lab, converge, "--limit", node, "-e", REBOOT_OK)
    assert first.rc == 0, first.out[-5000:]
    lap("converge")
    calls_first = _calls(lab, node)
    second = _playbook(lab, converge, "--limit", node, "-e", REBOOT_OK)
    lap("second run")
    calls_second = _calls(lab, node)
    facts = json.loads(lab.ssh(node, "cat /run/audit_logging_facts.json").stdout)
    # Let chrony select its source (a few seconds with iburst) before the audit judges it.
    lab.ssh(node, "chronyc waitsync 60 0 0 1 >/dev/null", check=False, timeout=180)
    converged = _audit(lab, tmp.mktemp(f"converged-{node}"), node)
    lap("audit after the play")
    marker = f"m7guard-forward-{node}-{secrets.token_hex(6)}"
    lab.ssh(node, f"logger -t m7guard-test {marker}")
    _wait_for(lab, COLLECTOR, f"grep -rqF {marker} /var/log/remote", 60)
    return {"first": first, "second": second, "calls_after_first": calls_first,
            "calls_after_second": calls_second, "facts": facts, "converged": converged,
            "marker": marker}


def _vm_story(lab, tmp: pytest.TempPathFactory) -> Story:
    lap = _Laps()
    lab.m7guard("lab", "reset", VM)
    _mapr_layout(lab, VM)
    lap("reset vm1, Data Fabric layout")
    with ThreadPoolExecutor(max_workers=2) as pool:
        fresh = pool.submit(_audit, lab, tmp.mktemp("fresh-vm1"), VM)
        collector = pool.submit(configure_collector, lab)
        fresh_results = fresh.result()
        collector.result()
    lap("fresh audit, collector")
    done = _converge(lab, VM, tmp, lap)

    pid = lab.ssh(VM, "sh -c 'echo $$; exec touch /etc/sudoers'").stdout.split()[0]
    record = _wait_for(lab, VM, f"ausearch --input-logs -i -k sudoers -p {pid}", 30)
    forwarded = bool(_wait_for(lab, COLLECTOR, f"grep -rE 'pid={pid} .*key=\"?sudoers' "
                                               "/var/log/remote", 30))
    collector_logs = lab.ssh(COLLECTOR, "cat /var/log/remote/*.log").stdout
    lap("forwarding and the sudoers record")

    lab.ansible(VM, "-m", "ansible.builtin.reboot", "-a", "reboot_timeout=900", timeout=1000)
    loaded = lab.ssh(VM, "auditctl -l").stdout
    status = lab.ssh(VM, "auditctl -s").stdout
    persisted = lab.ssh(VM, "cat /etc/audit/audit.rules").stdout
    lab.ssh(VM, "chronyc waitsync 60 0 0 1 >/dev/null", check=False, timeout=180)
    rebooted = _audit(lab, tmp.mktemp("rebooted-vm1"), VM)
    lap("reboot and audit")
    return Story(node=VM, fresh=fresh_results, later=rebooted, collector_logs=collector_logs,
                 timings=lap.t, sudoers_record=record, sudoers_forwarded=forwarded,
                 loaded_after_reboot=loaded, status_after_reboot=status,
                 persisted_after_reboot=persisted, **done)


def _node_story(lab, tmp: pytest.TempPathFactory) -> Story:
    lap = _Laps()
    lab.m7guard("lab", "reset", CONTAINER)
    _mapr_layout(lab, CONTAINER)
    before = lab.ssh(CONTAINER, SNAPSHOT).stdout
    lap("reset node2, Data Fabric layout")
    # The fresh audit, the collector, --check and bad input on the fresh node2, at once:
    # none of them changes a node the others read.
    with ThreadPoolExecutor(max_workers=5) as pool:
        fresh = pool.submit(_audit, lab, tmp.mktemp("fresh-node2"), CONTAINER)
        collector = pool.submit(configure_collector, lab)
        check_mode = pool.submit(_playbook, lab, "playbooks/audit.yml", "--limit", CONTAINER,
                                 "--check", "--diff")
        bad_action = pool.submit(_playbook, lab, "playbooks/audit.yml", "--limit", CONTAINER,
                                 "-e", "audit_logging_auditd_space_left_action=explode")
        bad_retention = pool.submit(
            _playbook, lab, "playbooks/audit.yml", "--limit", CONTAINER,
            "-e", json.dumps({"audit_logging_mapr_data_audit_retention_days": -30}))
        fresh_results = fresh.result()
        collector.result()
        runs = {"check": check_mode.result(), "action": bad_action.result(),
                "retention": bad_retention.result()}
    after = lab.ssh(CONTAINER, SNAPSHOT).stdout
    lap("fresh audit, collector, --check, bad input")
    done = _converge(lab, CONTAINER, tmp, lap)
    collector_logs = lab.ssh(COLLECTOR, "cat /var/log/remote/*.log").stdout
    lab.ssh(CONTAINER, f"echo probe > {AIDE_PROBE}")
    try:
        probed = _audit(lab, tmp.mktemp("probed-node2"), CONTAINER)
    finally:
        lab.ssh(CONTAINER, f"rm -f {AIDE_PROBE}")
    lap("AIDE probe and audit")
    return Story(node=CONTAINER, fresh=fresh_results, later=probed,
                 collector_logs=collector_logs, timings=lap.t, check_mode=runs["check"],
                 bad_action=runs["action"], bad_retention=runs["retention"],
                 snapshots={"before": before, "after": after}, **done)


@pytest.fixture(scope="module")
def stories(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Story]]:
    """node -> its story, told once per node on first use: vm1 (its own kernel) or node2 (a
    container). Each runs in its own track of `make test` (scripts/suite.py), so neither
    process touches the other's node."""
    told: dict[str, Story] = {}

    def get(node: str) -> Story:
        if node not in told:
            told[node] = (_vm_story if node == VM else _node_story)(lab, tmp_path_factory)
            print(f"\naudit_logging on {node}, seconds per step: {told[node].timings}, "
                  f"total {sum(told[node].timings.values()):.0f}")
        return told[node]

    yield get
    if VM in told:  # vm1 loses the Data Fabric layout
        lab.ssh(VM, "rm -rf /opt/mapr /var/lib/maprcli-recorder", check=False)
    if CONTAINER in told:  # later tests get a clean node2
        lab.m7guard("lab", "reset", CONTAINER, check=False)


@pytest.fixture
def story(stories: Callable[[str], Story], node: str) -> Story:
    return stories(node)


def _on(*nodes: str) -> pytest.MarkDecorator:
    """The story of each node named; vm1's cases carry the vm marker."""
    return pytest.mark.parametrize(
        "node", [pytest.param(n, id=n, marks=[pytest.mark.vm] if n == VM else [])
                 for n in nodes])


def _result(results: Results, node: str, rule: str) -> dict:
    return next(r for r in results.results if r["host"] == node and r["rule"] == rule)


# --- every check fails on a fresh node and passes after the play -------------------------


@_on(VM)
@pytest.mark.parametrize("rule", RULES)
def test_check_fails_on_a_fresh_vm(story: Story, rule: str) -> None:
    r = _result(story.fresh, VM, rule)
    assert r["state"] == "fail", r


@_on(VM)
@pytest.mark.parametrize("rule", RULES)
def test_check_passes_on_vm_after_the_play(story: Story, rule: str) -> None:
    r = _result(story.converged, VM, rule)
    assert r["state"] == "pass", r


@_on(CONTAINER)
@pytest.mark.parametrize("rule", sorted(set(RULES) - set(KERNEL_RULES) - {"AUD-005"}))
def test_container_check_fails_fresh_and_passes_after_the_play(story: Story, rule: str) -> None:
    assert _result(story.fresh, CONTAINER, rule)["state"] == "fail"
    assert _result(story.converged, CONTAINER, rule)["state"] == "pass"


# --- a container: rules persisted, not loaded, kernel checks notapplicable ---------------


@_on(CONTAINER)
@pytest.mark.parametrize("rule", KERNEL_RULES)
def test_kernel_checks_are_notapplicable_on_a_container(story: Story, rule: str) -> None:
    for results in (story.fresh, story.converged, story.later):
        r = _result(results, CONTAINER, rule)
        assert r["state"] == "notapplicable", r
        assert "condition not_container does not hold" in r["message"]
        assert "/run/.containerenv exists" in r["message"]


@_on(CONTAINER)
def test_journal_on_a_container_tmpfs_is_notapplicable(story: Story) -> None:
    r = _result(story.converged, CONTAINER, "AUD-005")
    assert r["state"] == "notapplicable", r
    # the inventory, not the node, says it is a container; the message names who decided
    assert "is a tmpfs on a" in r["message"] and "container node" in r["message"], r
    assert "inventory (container)" in r["message"], r


@_on(CONTAINER)
def test_container_persists_the_rules_and_says_they_are_not_loaded(story: Story, lab) -> None:
    facts = story.facts
    assert facts["audit_logging_container"] is True
    assert facts["audit_logging_kernel_rules_loaded"] is False
    assert "container" in facts["audit_logging_kernel_rules_reason"]
    assert "not loaded" in facts["audit_logging_kernel_rules_reason"]
    assert facts["audit_logging_persisted_rule_count"] > 50
    merged = lab.ssh(CONTAINER, "cat /etc/audit/audit.rules").stdout
    assert "-w /etc/sudoers -p wa -k sudoers" in merged
    assert "-w /opt/mapr/conf -p wa -k mapr_conf" in merged
    # auditd is installed and enabled like on any node, but systemd keeps it from starting.
    state = lab.ssh(CONTAINER, "systemctl is-enabled auditd; systemctl is-active auditd",
                    check=False).stdout.split()
    assert state == ["enabled", "inactive"]


@_on(VM)
def test_vm_reports_its_rules_loaded_and_immutable(story: Story) -> None:
    facts = story.facts
    assert facts["audit_logging_container"] is False
    assert facts["audit_logging_kernel_rules_loaded"] is True
    assert facts["audit_logging_immutable"] is True
    assert facts["audit_logging_reboot_required"] is False
    assert facts["audit_logging_kernel_rule_count"] == facts["audit_logging_persisted_rule_count"]
    assert "/usr/bin/sudo" in facts["audit_logging_privileged_programs"]


# --- on vm1: rules in the kernel, an event with the key, kept over a reboot --------------


@_on(VM)
def test_touching_sudoers_leaves_a_record_with_the_rule_key(story: Story) -> None:
    assert 'key=sudoers' in story.sudoers_record, story.sudoers_record
    assert "name=/etc/sudoers" in story.sudoers_record
    assert "exe=/usr/bin/touch" in story.sudoers_record


@_on(VM)
def test_rules_are_loaded_again_after_a_reboot(story: Story) -> None:
    loaded = story.loaded_after_reboot.splitlines()
    assert "-w /etc/sudoers -p wa -k sudoers" in loaded
    assert "-w /etc/shadow -p wa -k identity" in loaded
    assert any("-F path=/usr/bin/sudo" in line and "key=privileged" in line for line in loaded)
    assert any("-S init_module" in line and "key=modules" in line for line in loaded)
    persisted = [ln for ln in story.persisted_after_reboot.splitlines()
                 if ln.startswith(("-a ", "-w "))]
    assert len(loaded) == len(persisted)
    assert re.search(r"^enabled 2$", story.status_after_reboot, re.M), story.status_after_reboot


@_on(VM)
@pytest.mark.parametrize("rule", KERNEL_RULES)
def test_kernel_checks_pass_after_the_reboot(story: Story, rule: str) -> None:
    r = _result(story.later, VM, rule)
    assert r["state"] == "pass", r


@_on(CONTAINER)
def test_aide_check_fails_when_a_watched_path_changes(story: Story) -> None:
    r = _result(story.later, CONTAINER, "AUD-008")
    assert r["state"] == "fail", r
    assert AIDE_PROBE in r["message"]
    assert "1 added" in r["message"]


# --- forwarding to the collector ---------------------------------------------------------


@_on(VM, CONTAINER)
def test_forwarded_records_arrive_at_the_collector(story: Story) -> None:
    assert story.marker in story.collector_logs, f"{story.node}'s record did not reach it"


@_on(VM)
def test_kernel_audit_records_are_forwarded_too(story: Story) -> None:
    assert story.sudoers_forwarded


# --- Data Fabric auditing through the recording maprcli ----------------------------------


@_on(VM, CONTAINER)
def test_documented_audit_commands_are_issued_once(story: Story) -> None:
    assert _mutating(story.calls_after_first) == DOCUMENTED
    assert _mutating(story.calls_after_second) == DOCUMENTED
    reads = story.calls_after_second[len(story.calls_after_first):]
    assert reads, "the second run did not even read the state"
    assert not _mutating(reads)
    assert story.facts["audit_logging_mapr"]["commands"] == []


# --- idempotence, check mode, bad input ---------------------------------------------------


@_on(VM, CONTAINER)
def test_second_run_changes_nothing(story: Story) -> None:
    recap = story.second.recap()
    assert story.second.rc == 0, story.second.out[-3000:]
    assert set(recap) == {story.node}
    assert recap[story.node]["changed"] == 0, recap
    assert recap[story.node]["failed"] == 0
    assert story.first.recap()[story.node]["changed"] > 0


@_on(CONTAINER)
def test_check_mode_on_a_fresh_node_changes_nothing(story: Story) -> None:
    assert story.check_mode.rc == 0, story.check_mode.out[-3000:]
    assert story.check_mode.recap()[CONTAINER]["changed"] > 0  # it saw what it would do
    assert story.snapshots["after"] == story.snapshots["before"]
    assert "no packages found matching auditd" in story.snapshots["before"]


@_on(CONTAINER)
def test_unknown_action_name_is_refused_naming_the_variable(story: Story) -> None:
    run = story.bad_action
    assert run.rc != 0
    assert "audit_logging_auditd_space_left_action" in run.out
    assert "explode" in run.out
    assert run.recap()[CONTAINER]["changed"] == 0


@_on(CONTAINER)
def test_negative_retention_is_refused_naming_the_variable(story: Story) -> None:
    run = story.bad_retention
    assert run.rc != 0
    assert "audit_logging_mapr_data_audit_retention_days = -30" in run.out
    assert run.recap()[CONTAINER]["changed"] == 0


@_on(VM)
def test_mutation_battery_on_the_vm(story: Story, lab, tmp_path: Path) -> None:
    """The AUD breaks of tests/battery/ that need vm1 (kernel auditing, auditd at boot), on
    the hardened vm1: each turns its rule to fail and no AUD rule that was not broken moves
    (profile audit; the container battery compares every rule). vm1
    audits slowly (software emulation), so a round breaks several rules at once (one break of
    each; share=True); each property still has its own round. AUD-007 (chrony synchronised)
    is not compared on vm1: under software emulation the VM's clock runs unevenly and chrony
    may leave and regain synchronisation between two audits whatever a break does; AUD-007's
    breaks run on the container data nodes (tests/integration/test_site.py)."""
    breaks = breaks_of("vm1 audit")
    volatile = {(VM, "AUD-007"): "chrony synchronisation of an emulated VM's clock is a live "
                                 "reading no break controls"}

    def cells(nodes, tag: str) -> Cells:
        results = _audit(lab, tmp_path / tag, ",".join(nodes))
        return {(r["host"], r["rule"]): (r["state"], r["message"]) for r in results.results}

    report = battery_run(lambda node, cmd: lab.ssh(node, cmd, check=False), cells, breaks,
                         (VM,), share=True, volatile=volatile)
    print("\n" + report.summary())
    assert report.problems == [], "\n".join(report.problems)
    assert report.breaks == len(breaks) > 0
