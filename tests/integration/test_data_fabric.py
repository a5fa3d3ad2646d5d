"""The data_fabric role and the DF-* checks on node3, against the Data Fabric stand-in.

Data Fabric cannot be installed here: node3 gets the stand-in layout (tests/standin/maprcli.py
as /opt/mapr/bin/maprcli, /opt/mapr/roles/cldb, mapr-clusters.conf naming node3.lab.test), so
it is the CLDB node of a one-node stand-in cluster. The fresh stand-in is audited (profile
data_fabric): DF-001 passes (the stand-in is installed secure with DARE), DF-002 .. DF-006
fail, each reported once, under cluster:node3.lab.test, evaluated on node3, and the node rules
DF-007 (clear-text keystore passwords), DF-008 (the NFSv3 exports as shipped) and DF-009 (a
90-day ticket) fail under node3. `--check --diff` and refused inputs leave the stand-in's
state and files as they were. The role then runs twice (the second run changed=0, no maprcli
command issued), and the audit passes every DF rule. Then one property of each rule is
broken in the hardened stand-in's state and files, and each rule fails with it. What the
stand-in does not prove is said in docs/roles/data_fabric.md.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audit_logging_kit import HADOOP_CONF, LONG_TICKET, RECORDER, mapr_layout
from labkit import LabHandle, play_recap

from m7guard.results import Results

pytestmark = [pytest.mark.lab]

NODE = "node3"
CLUSTER = f"cluster:{NODE}.lab.test"
PLAYBOOK = "playbooks/data_fabric.yml"
RULES = [f"DF-{n:03d}" for n in range(1, 10)]
NODE_RULES = {"DF-007", "DF-008", "DF-009"}  # read on each node, reported under it
BROKEN_TICKET = "/tmp/maprticket_1002"
STATE = str(Path(RECORDER).parent / "state.json")
SSL_CLIENT = f"{HADOOP_CONF}/ssl-client.xml"
EXPORTS = "/opt/mapr/conf/exports"
READ_STATE = (f"cat {STATE} 2>/dev/null || echo none; "
              f"sha256sum {HADOOP_CONF}/*.xml {EXPORTS}; ls /tmp/maprticket_*")
MUTATING = {"modify", "audit", "set", "edit", "save"}
# One property of each rule, broken in the hardened stand-in's state (each rule reads its own).
BREAK = (
    "import json; p = '" + STATE + "'; s = json.load(open(p)); "
    "s['cluster']['secure'] = False; "
    "s['volumes']['cards']['wiresecurityenabled'] = 0; "
    "s['volumes']['patients']['volumeAces']['readAce'] = 'g:pci-readers | p'; "
    "s['volumes']['cards']['audited'] = 0; "
    "s['acl'].append({'Principal': 'User intruder', 'Allowed actions': ['login', 'fc']}); "
    "s['policies'][0]['accesscontrol'] = 'Disarmed'; "
    "json.dump(s, open(p, 'w')); "
    "c = '" + SSL_CLIENT + "'; t = open(c).read().replace('</configuration>', "
    "'<property><name>ssl.client.truststore.password</name><value>x</value></property>\\n"
    "</configuration>'); open(c, 'w').write(t); "
    "open('" + EXPORTS + "', 'a').write('/mapr/node3.lab.test (ro)\\n'); "
    "json.dump([{'cluster': 'node3.lab.test', 'user': 'intruder', 'uid': 1002, 'gids': [1002], "
    "'created': 0, 'expires': 30 * 86400, 'renewal': 30 * 86400}], "
    "open('" + BROKEN_TICKET + "', 'w'))"
)
BROKEN = {
    "DF-001": "the cluster is not secure",
    "DF-002": "volume cards: wiresecurityenabled is off",
    "DF-003": "volume patients: readAce 'g:pci-readers | p' grants everyone (p)",
    "DF-004": "volume cards is not audited",
    "DF-005": "u:intruder holds fc without being a declared administrator",
    "DF-006": "security policy pci-cardholder is Disarmed",
    "DF-007": f"{SSL_CLIENT}: ssl.client.truststore.password holds a clear-text password",
    "DF-008": "/mapr/node3.lab.test is exported to every host (ro)",
    "DF-009": f"{BROKEN_TICKET}: the ticket of intruder for node3.lab.test lasts 30.0 days",
}
BAD_INPUT = {
    "data_fabric_read_ace": ("", "data_fabric_read_ace is not set"),
    "data_fabric_cluster_admins": (["u:etl"], "leaves out u:mapr"),
}


@dataclass
class Story:
    fresh: Results
    after: Results
    broken: Results
    check: Any
    bad: dict[str, Any]
    states: tuple[str, str]
    first: Any
    second: Any
    calls_of_second: list[list[str]]


def _audit(lab: LabHandle, out: Path) -> Results:
    proc = lab.m7guard("audit", "-i", str(lab.inventory), "--limit", NODE, "--profile",
                       "data_fabric", "--out", str(out), "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return Results.load(out / "results.json")


def _play(lab: LabHandle, *args: str) -> Any:
    return lab.playbook(PLAYBOOK, "--limit", NODE, *args, check=False, timeout=600)


def _calls(lab: LabHandle) -> list[list[str]]:
    out = lab.ssh(NODE, f"cat {RECORDER} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _story(lab: LabHandle, tmp: pytest.TempPathFactory) -> Story:
    mapr_layout(lab, NODE)
    state_fresh = lab.ssh(NODE, READ_STATE).stdout
    with ThreadPoolExecutor(max_workers=4) as pool:
        fresh = pool.submit(_audit, lab, tmp.mktemp("fresh"))
        check = pool.submit(_play, lab, "--check", "--diff")
        bad = {var: pool.submit(_play, lab, "-e", json.dumps({var: value}))
               for var, (value, _) in BAD_INPUT.items()}
        fresh_results, check_run = fresh.result(), check.result()
        bad_runs = {var: run.result() for var, run in bad.items()}
    state_after_check = lab.ssh(NODE, READ_STATE).stdout
    first = _play(lab)
    seen = len(_calls(lab))
    second = _play(lab)
    calls_of_second = _calls(lab)[seen:]
    after = _audit(lab, tmp.mktemp("after"))
    lab.ssh(NODE, f"python3 -c {shlex.quote(BREAK)}")
    broken = _audit(lab, tmp.mktemp("broken"))
    return Story(fresh_results, after, broken, check_run, bad_runs,
                 (state_fresh, state_after_check), first, second, calls_of_second)


@pytest.fixture(scope="module")
def story(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    yield _story(lab, tmp_path_factory)
    lab.ssh(NODE, f"rm -rf /opt/mapr {Path(RECORDER).parent} {LONG_TICKET} {BROKEN_TICKET}",
            check=False)


def _result(results: Results, rule: str) -> dict[str, Any]:
    found = [r for r in results.results if r["rule"] == rule]
    assert len(found) == 1, found  # once, for the cluster (a node rule: for node3)
    return found[0]


def _subject(rule: str) -> str:
    return NODE if rule in NODE_RULES else CLUSTER


@pytest.mark.parametrize("rule", RULES)
def test_the_fresh_stand_in_fails_all_but_df_001_reported_once_for_the_cluster(
        story: Story, rule: str) -> None:
    r = _result(story.fresh, rule)
    assert r["host"] == _subject(rule), r
    # a cluster rule names the node that read it; a node rule is its node's own
    assert r.get("evaluated_on") == (None if rule in NODE_RULES else NODE), r
    assert r["state"] == ("pass" if rule == "DF-001" else "fail"), r


def test_check_mode_changes_nothing_and_shows_the_changes(story: Story) -> None:
    recap = play_recap(story.check.stdout)[NODE]
    assert story.check.returncode == 0 and recap["failed"] == 0, story.check.stdout[-4000:]
    assert recap["changed"] == 4  # the cluster, the node's SSL files, exports and tickets
    assert re.search(r'^\+\s+"readAce": "g:pci-readers \| u:mapr"', story.check.stdout, re.M)
    # the stand-in's state, after --check and the refused runs, is the fresh one
    assert story.states[0] == story.states[1]


@pytest.mark.parametrize("var", sorted(BAD_INPUT))
def test_bad_input_is_refused_before_anything_changes(story: Story, var: str) -> None:
    run = story.bad[var]
    assert run.returncode != 0 and play_recap(run.stdout)[NODE]["failed"] == 1, run.stdout
    assert "nothing was changed" in run.stdout and BAD_INPUT[var][1] in run.stdout, run.stdout


def test_the_role_applies_then_changes_nothing(story: Story) -> None:
    first, second = (play_recap(p.stdout)[NODE] for p in (story.first, story.second))
    assert story.first.returncode == 0 and first["changed"] == 4, story.first.stdout[-4000:]
    assert story.second.returncode == 0 and second["changed"] == 0, story.second.stdout[-4000:]
    assert not [c for c in story.calls_of_second if MUTATING & set(c[:3])], \
        story.calls_of_second


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_passes_after_the_role(story: Story, rule: str) -> None:
    r = _result(story.after, rule)
    assert (r["host"], r["state"]) == (_subject(rule), "pass"), r


@pytest.mark.parametrize("rule", RULES)
def test_a_hardened_stand_in_broken_for_each_rule_fails_it(story: Story, rule: str) -> None:
    r = _result(story.broken, rule)
    assert (r["host"], r["state"]) == (_subject(rule), "fail"), r
    assert BROKEN[rule] in r["message"], r
