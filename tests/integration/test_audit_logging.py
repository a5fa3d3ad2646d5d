"""The audit_logging role and the AUD-* checks on node2, a container sharing the host's kernel.

node2 is replaced with a fresh node, given a Data Fabric layout with the recording `maprcli`
stand-in (tests/standin/maprcli.py), and audited: every AUD-* check
fails but those of the host kernel, which are notapplicable on a container. `--check` and
bad inputs on the fresh node change nothing. The role then runs once for real
(audit_logging_reboot_ok) and once more, which must change nothing; the audit passes; the
lab's collector node receives forwarded records over TCP; a file added where AIDE watches
turns AUD-008 to fail, and a rerun of the role or of site.yml then stops before any change
instead of taking a baseline over it, until audit_logging_aide_update accepts it (the
report kept). node2 is replaced again at the end, so later tests get a clean node.

vm1, with its own kernel (rules loaded and immutable, kernel records, a reboot), has its
story in test_vm1.py, shared with kernel_tuning so that vm1 is reset, rebooted and audited
once for both.

Nothing here runs auditctl in a container: the role never does, and the checks that would
are notapplicable there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from audit_logging_kit import (
    COLLECTOR,
    KERNEL_RULES,
    REBOOT_OK,
    RULES,
    Laps,
    Story,
    assert_documented_commands_issued_once,
    assert_forwarded,
    assert_second_run_changes_nothing,
    audit,
    converge,
    mapr_layout,
    playbook,
    result,
)
from labkit import configure_collector

pytestmark = [pytest.mark.lab]

CONTAINER = "node2"
AIDE_PROBE = "/etc/m7guard-aide-probe"
# The baseline and the accepted reports, by checksum: what a rerun must not replace or add.
AIDE_STATE = "cd /var/lib/aide && sha256sum aide.db accepted-*.txt 2>&1; true"
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


def _story(lab, tmp: pytest.TempPathFactory) -> Story:
    lap = Laps()
    lab.m7guard("lab", "reset", CONTAINER)
    mapr_layout(lab, CONTAINER)
    before = lab.ssh(CONTAINER, SNAPSHOT).stdout
    lap("reset node2, Data Fabric layout")
    # The fresh audit, the collector, --check and bad input on the fresh node2, at once:
    # none of them changes a node the others read.
    with ThreadPoolExecutor(max_workers=5) as pool:
        fresh = pool.submit(audit, lab, tmp.mktemp("fresh-node2"), CONTAINER)
        collector = pool.submit(configure_collector, lab)
        check_mode = pool.submit(playbook, lab, "playbooks/audit_logging.yml", "--limit", CONTAINER,
                                 "--check", "--diff")
        bad_action = pool.submit(playbook, lab, "playbooks/audit_logging.yml", "--limit", CONTAINER,
                                 "-e", "audit_logging_auditd_space_left_action=explode")
        bad_retention = pool.submit(
            playbook, lab, "playbooks/audit_logging.yml", "--limit", CONTAINER,
            "-e", json.dumps({"audit_logging_mapr_data_audit_retention_days": -30}))
        fresh_results = fresh.result()
        collector.result()
        runs = {"check": check_mode.result(), "action": bad_action.result(),
                "retention": bad_retention.result()}
    after = lab.ssh(CONTAINER, SNAPSHOT).stdout
    lap("fresh audit, collector, --check, bad input")
    done = converge(lab, CONTAINER, tmp, lap)
    collector_logs = lab.ssh(COLLECTOR, "cat /var/log/remote/*.log").stdout
    lab.ssh(CONTAINER, f"echo probe > {AIDE_PROBE}")
    try:
        probed = audit(lab, tmp.mktemp("probed-node2"), CONTAINER)
        lap("AIDE probe and audit")
        aide_state = {"probed": lab.ssh(CONTAINER, AIDE_STATE).stdout}
        # Reruns with the probe in place, the role's play book and site.yml at once: each
        # must stop before it changes anything, so neither takes a baseline over the probe.
        with ThreadPoolExecutor(max_workers=2) as pool:
            role = pool.submit(playbook, lab, "playbooks/audit_logging.yml", "--limit", CONTAINER)
            site = pool.submit(playbook, lab, "playbooks/site.yml", "--limit", CONTAINER)
            reruns = {"role": role.result(), "site": site.result()}
        aide_state["refused"] = lab.ssh(CONTAINER, AIDE_STATE).stdout
        # with the converge's variables, so that the probe is all the baseline accepts
        reruns["update"] = playbook(lab, "playbooks/audit_logging.yml", "--limit", CONTAINER,
                                    "-e", REBOOT_OK, "-e", "audit_logging_aide_update=true")
        aide_state["accepted"] = lab.ssh(CONTAINER, AIDE_STATE).stdout
        aide_state["report"] = lab.ssh(CONTAINER, "cat /var/lib/aide/accepted-*.txt",
                                       check=False).stdout
        aide_state["check"] = lab.ssh(CONTAINER, "aide --check --config=/etc/aide/aide.conf "
                                                 ">/dev/null; echo exit $?", check=False).stdout
        accepted = audit(lab, tmp.mktemp("accepted-node2"), CONTAINER)
        lap("reruns over the probe: refused, then accepted")
    finally:
        lab.ssh(CONTAINER, f"rm -f {AIDE_PROBE}")
    return Story(node=CONTAINER, fresh=fresh_results, later=probed,
                 collector_logs=collector_logs, timings=lap.t, check_mode=runs["check"],
                 bad_action=runs["action"], bad_retention=runs["retention"],
                 snapshots={"before": before, "after": after}, reruns=reruns,
                 aide_state=aide_state, accepted=accepted, **done)



@pytest.fixture(scope="module")
def story(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    told = _story(lab, tmp_path_factory)
    print(f"\naudit_logging on {CONTAINER}, seconds per step: {told.timings}, "
          f"total {sum(told.timings.values()):.0f}")
    yield told
    lab.m7guard("lab", "reset", CONTAINER, check=False)  # later tests get a clean node2


# --- every check fails on the fresh node and passes after the play -----------------------


@pytest.mark.parametrize("rule", sorted(set(RULES) - set(KERNEL_RULES) - {"AUD-005"}))
def test_container_check_fails_fresh_and_passes_after_the_play(story: Story, rule: str) -> None:
    assert result(story.fresh, CONTAINER, rule)["state"] == "fail"
    assert result(story.converged, CONTAINER, rule)["state"] == "pass"


# --- a container: rules persisted, not loaded, kernel checks notapplicable ---------------


@pytest.mark.parametrize("rule", KERNEL_RULES)
def test_kernel_checks_are_notapplicable_on_a_container(story: Story, rule: str) -> None:
    for results in (story.fresh, story.converged, story.later):
        r = result(results, CONTAINER, rule)
        assert r["state"] == "notapplicable", r
        assert "condition not_container does not hold" in r["message"]
        assert "/run/.containerenv exists" in r["message"]


def test_journal_on_a_container_tmpfs_is_notapplicable(story: Story) -> None:
    r = result(story.converged, CONTAINER, "AUD-005")
    assert r["state"] == "notapplicable", r
    # the inventory, not the node, says it is a container; the message names who decided
    assert "is a tmpfs on a" in r["message"] and "container node" in r["message"], r
    assert "inventory (container)" in r["message"], r


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


def test_aide_check_fails_when_a_watched_path_changes(story: Story) -> None:
    r = result(story.later, CONTAINER, "AUD-008")
    assert r["state"] == "fail", r
    assert AIDE_PROBE in r["message"]
    assert "1 added" in r["message"]


@pytest.mark.parametrize("rerun", ["role", "site"])
def test_a_rerun_stops_before_taking_a_baseline_over_a_change_it_did_not_make(
        story: Story, rerun: str) -> None:
    run = story.reruns[rerun]
    assert run.rc != 0, run.out[-3000:]
    assert "AUD-008: 1 path(s) AIDE watches changed since the last baseline" in run.out, (
        run.out[-3000:])
    assert AIDE_PROBE in run.out and "-e audit_logging_aide_update=true" in run.out
    assert run.recap()[CONTAINER]["changed"] == 0, run.out[-3000:]
    assert story.aide_state["refused"] == story.aide_state["probed"]


def test_the_update_accepts_the_change_and_keeps_the_report(story: Story) -> None:
    run = story.reruns["update"]
    assert run.rc == 0, run.out[-3000:]
    assert story.aide_state["accepted"] != story.aide_state["probed"]
    assert "accepted-" in story.aide_state["accepted"]
    assert AIDE_PROBE in story.aide_state["report"]
    assert story.aide_state["check"].strip() == "exit 0"


def test_the_audit_passes_and_shows_what_the_update_accepted(story: Story) -> None:
    assert story.accepted is not None
    r = result(story.accepted, CONTAINER, "AUD-008")
    assert r["state"] == "pass", r
    accepted = r["evidence"]["accepted_baselines"]
    assert accepted["count"] == 1, accepted
    assert accepted["latest"][0]["paths"] == [AIDE_PROBE], accepted
    assert accepted["latest"][0]["added"] == 1, accepted
    # before the update nothing had been accepted on node2
    before = result(story.later, CONTAINER, "AUD-008")["evidence"]["accepted_baselines"]
    assert before == {"count": 0, "latest": []}, before


def test_forwarded_records_arrive_at_the_collector(story: Story) -> None:
    assert_forwarded(story)


def test_documented_audit_commands_are_issued_once(story: Story) -> None:
    assert_documented_commands_issued_once(story)


# --- idempotence, check mode, bad input ---------------------------------------------------


def test_second_run_changes_nothing(story: Story) -> None:
    assert_second_run_changes_nothing(story)


def test_check_mode_on_a_fresh_node_changes_nothing(story: Story) -> None:
    assert story.check_mode.rc == 0, story.check_mode.out[-3000:]
    assert story.check_mode.recap()[CONTAINER]["changed"] > 0  # it saw what it would do
    assert story.snapshots["after"] == story.snapshots["before"]
    assert "no packages found matching auditd" in story.snapshots["before"]


def test_unknown_action_name_is_refused_naming_the_variable(story: Story) -> None:
    run = story.bad_action
    assert run.rc != 0
    assert "audit_logging_auditd_space_left_action" in run.out
    assert "explode" in run.out
    assert run.recap()[CONTAINER]["changed"] == 0


def test_negative_retention_is_refused_naming_the_variable(story: Story) -> None:
    run = story.bad_retention
    assert run.rc != 0
    assert "audit_logging_mapr_data_audit_retention_days = -30" in run.out
    assert run.recap()[CONTAINER]["changed"] == 0
