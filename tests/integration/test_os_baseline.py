"""The os_baseline role and the OSB-* checks on node3, a container sharing the host's kernel.

node3 is replaced with a fresh node and audited (profile os): every OSB rule fails but OSB-004
(kernel modules: the host's, notapplicable on a container) and those the fresh Debian node
already meets. `--check --diff` and bad inputs on the fresh node change nothing. The role
then runs with its strictest sshd option (one session per connection): the controller still
logs in afresh (the role's own check, then a new SSH login and an Ansible ping), a second run
changes nothing, and the audit passes every OSB rule but one property of OSB-006 that
kerberos_mfa owns (LogLevel VERBOSE; not applied here). An sshd configuration that fails
`sshd -t` once the drop-in is in place makes the role put the previous drop-in back and stop.
node3 is replaced again at the end, so later tests get a clean node.

The role with every other role (site.yml) and the mutation battery of the OSB rules run on
the three data nodes in test_site.py; OSB-004 is judged and broken on vm1 (test_vm1.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from labkit import LabHandle, play_recap
from os_baseline_kit import BAD_INPUT, PLAYBOOK, RULES, SNAPSHOT

from m7guard.results import Results

pytestmark = [pytest.mark.lab]

NODE = "node3"
DROPIN = "/etc/ssh/sshd_config.d/00-m7guard-os-baseline.conf"
BROKEN = "/etc/ssh/sshd_config.d/99-m7guard-test-broken.conf"
STRICTEST = ("-e", "os_baseline_sshd_max_sessions=1", "-e", "os_baseline_rollback_seconds=30")
# Rules a fresh Debian node meets already, or that do not apply to a container.
FRESH_NOT_FAILING = {
    "OSB-004": "notapplicable",  # the host kernel's modules
    "OSB-008": "notapplicable",  # cron is not installed on the fresh node
    "OSB-009": "pass",  # Debian's own modes of passwd, group, shadow, gshadow
    "OSB-013": "pass",  # nothing world-writable outside /tmp and /var/tmp, no personal account
}


@dataclass
class Story:
    fresh: Results
    after: Results
    check: Any
    bad: dict[str, Any]
    snapshots: tuple[str, str]
    first: Any
    second: Any
    login: Any
    ping: Any
    rollback: Any
    dropin_before_rollback: str
    dropin_after_rollback: str


def _audit(lab: LabHandle, out: Path) -> Results:
    proc = lab.m7guard("audit", "-i", str(lab.inventory), "--limit", NODE, "--profile", "os",
                       "--out", str(out), "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return Results.load(out / "results.json")


def _play(lab: LabHandle, *args: str) -> Any:
    return lab.playbook(PLAYBOOK, "--limit", NODE, *args, check=False, timeout=900)


def _story(lab: LabHandle, tmp: pytest.TempPathFactory) -> Story:
    lab.m7guard("lab", "reset", NODE)
    before = lab.ssh(NODE, SNAPSHOT).stdout
    with ThreadPoolExecutor(max_workers=6) as pool:
        fresh = pool.submit(_audit, lab, tmp.mktemp("fresh"))
        check = pool.submit(_play, lab, "--check", "--diff")
        bad = {var: pool.submit(_play, lab, "-e", json.dumps({var: value}))
               for var, value in BAD_INPUT.items()}
        fresh_results, check_run = fresh.result(), check.result()
        bad_runs = {var: run.result() for var, run in bad.items()}
    after_check = lab.ssh(NODE, SNAPSHOT).stdout
    first = _play(lab, *STRICTEST)
    login = lab.ssh(NODE, "true", check=False)
    ping = lab.ansible(NODE, "-m", "ansible.builtin.ping", check=False)
    second = _play(lab, *STRICTEST)
    after = _audit(lab, tmp.mktemp("after"))
    # A configuration sshd -t refuses once the drop-in changes: the role restores the old one.
    dropin = lab.ssh(NODE, f"cat {DROPIN}").stdout
    lab.ssh(NODE, f"echo 'NoSuchKeyword yes' > {BROKEN}")
    try:
        rollback = _play(lab, "-e", "os_baseline_sshd_max_sessions=2")
        dropin_after = lab.ssh(NODE, f"cat {DROPIN}").stdout
    finally:
        lab.ssh(NODE, f"rm -f {BROKEN}")
    return Story(fresh_results, after, check_run, bad_runs, (before, after_check), first,
                 second, login, ping, rollback, dropin, dropin_after)


@pytest.fixture(scope="module")
def story(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    yield _story(lab, tmp_path_factory)
    lab.m7guard("lab", "reset", NODE, check=False)  # later tests get a clean node3


def _state(results: Results, rule: str) -> dict[str, Any]:
    return next(r for r in results.results if r["host"] == NODE and r["rule"] == rule)


@pytest.mark.parametrize("rule", RULES)
def test_every_check_fails_on_the_fresh_node(story: Story, rule: str) -> None:
    r = _state(story.fresh, rule)
    assert r["state"] == FRESH_NOT_FAILING.get(rule, "fail"), r


def test_check_mode_on_the_fresh_node_changes_nothing(story: Story) -> None:
    recap = play_recap(story.check.stdout)[NODE]
    assert story.check.returncode == 0 and recap["failed"] == 0, story.check.stdout[-4000:]
    assert recap["changed"] > 0  # it reports what a real run would change
    assert "+MaxSessions 1" not in story.check.stdout  # the default (4) is what it shows
    assert "+MaxSessions 4" in story.check.stdout
    assert story.snapshots[0] == story.snapshots[1]


@pytest.mark.parametrize("var", sorted(BAD_INPUT))
def test_bad_input_is_refused_naming_the_variable(story: Story, var: str) -> None:
    run = story.bad[var]
    recap = play_recap(run.stdout)[NODE]
    assert run.returncode != 0 and recap["failed"] == 1 and recap["changed"] == 0
    assert f"{var} = " in run.stdout, run.stdout[-3000:]


def test_the_controller_still_logs_in_with_the_strictest_options(story: Story) -> None:
    recap = play_recap(story.first.stdout)[NODE]
    assert story.first.returncode == 0 and recap["failed"] == 0, story.first.stdout[-4000:]
    assert "A fresh login of the controller works" in story.first.stdout
    assert story.login.returncode == 0, story.login.stderr
    assert story.ping.returncode == 0 and "SUCCESS" in story.ping.stdout, story.ping.stdout
    assert "MaxSessions 1" in story.dropin_before_rollback


def test_second_run_changes_nothing(story: Story) -> None:
    recap = play_recap(story.second.stdout)[NODE]
    assert recap["changed"] == 0 and recap["failed"] == 0, story.second.stdout[-4000:]


@pytest.mark.parametrize("rule", RULES)
def test_every_check_passes_after_the_role(story: Story, rule: str) -> None:
    r = _state(story.after, rule)
    if rule == "OSB-004":
        assert r["state"] == "notapplicable", r
    elif rule == "OSB-006":
        # LogLevel VERBOSE is kerberos_mfa's (site.yml applies both: test_site.py)
        assert (r["state"], r["message"]) == ("fail", "global: loglevel INFO (VERBOSE)"), r
    else:
        assert r["state"] == "pass", r


def test_an_sshd_configuration_refused_by_sshd_t_is_rolled_back(story: Story) -> None:
    run = story.rollback
    assert run.returncode != 0, run.stdout[-3000:]
    assert "sshd change rolled back" in run.stdout, run.stdout[-3000:]
    assert story.dropin_after_rollback == story.dropin_before_rollback
