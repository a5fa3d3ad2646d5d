"""The sweep of issue 13 over the other checks: more paths from missing evidence or from a
construct left unevaluated to `pass` (or to a silent `notapplicable`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from m7guard.catalog import load_catalog
from m7guard.checks import audit_logging, performance, zero_trust_network
from m7guard.checks.support.snapshot import HostFacts, HostSnapshot
from m7guard.netpolicy.hoststate import NetState

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "policies")


def params(rule_id: str) -> dict[str, Any]:
    return CATALOG.parameters_for(CATALOG.rule(rule_id), CATALOG.profile("baseline"))


def test_aud_006_when_find_fails_is_an_error_not_a_pass(expect, fake_host, fake_file,
                                                        out) -> None:
    host = fake_host({"find ": out(1, "", "find: '/var/log': Permission denied")},
                     files={"/var/log/audit": fake_file(mode=0o750, directory=True)})
    assert "find" in expect.error(audit_logging.test_aud_006, host=host,
                                  params=params("AUD-006"), evidence={})


def test_aud_006_still_passes_and_fails_on_a_readable_listing(expect, fake_host,
                                                              fake_file) -> None:
    files = {"/var/log/audit": fake_file(mode=0o750, directory=True)}
    clean = fake_host({"-maxdepth 1": "600 root /var/log/audit/audit.log\n", "find /var/log": ""},
                      files=files)
    expect.run(audit_logging.test_aud_006, host=clean, params=params("AUD-006"), evidence={})
    loose = fake_host({"-maxdepth 1": "644 root /var/log/audit/audit.log\n",
                       "find /var/log": ""}, files=files)
    assert "0640" in expect.fail(audit_logging.test_aud_006, host=loose,
                                 params=params("AUD-006"), evidence={})


def test_aud_003_when_auditctl_cannot_list_the_rules_is_an_error(expect, fake_host, fake_file,
                                                                 out) -> None:
    host = fake_host({"auditctl -l": out(1, "", "You must be root to run this program."),
                      "auditctl -s": "enabled 1\n"},
                     files={"/etc/audit/audit.rules": fake_file("-w /etc/passwd -p wa -k x\n")})
    assert "auditctl -l" in expect.error(audit_logging.test_aud_003, host=host,
                                         params=params("AUD-003"), evidence={})


def test_perf_010_and_011_a_script_that_did_not_run_is_not_notapplicable(expect, fake_host,
                                                                        out) -> None:
    broken = fake_host({"@@m7g-perf": out(126, "", "sh: permission denied")})
    assert "no output" in expect.error(performance.test_perf_010, host=broken, evidence={},
                                       params=params("PERF-010"))
    assert "no output" in expect.error(performance.test_perf_011, host=broken, evidence={},
                                       params=params("PERF-011"))


def test_perf_005_without_the_tuning_derivations_is_an_error(expect, fake_host, monkeypatch,
                                                           tmp_path) -> None:
    """The node's size is known (the profile m7i_profile recorded), but the roles whose
    derivations turn it into targets are missing: undecided, not a failure of the node."""
    from m7guard import m7i
    from m7guard.checks.support import sizing as _sizing

    monkeypatch.setenv("M7GUARD_ROLES", str(tmp_path))
    _sizing.plugin.cache_clear()
    snap = HostSnapshot("node", None, facts=HostFacts())
    recorded = json.dumps(m7i.profile("m7i.2xlarge", "imds"))
    host = fake_host({_sizing.PROFILE_FACT: recorded})
    host.backend = SimpleNamespace(NAME="local")  # no Ansible inventory: the recorded profile
    try:
        message = expect.error(performance.test_perf_005, host=host, host_snapshot=snap,
                               evidence={}, params=params("PERF-005"))
    finally:
        _sizing.plugin.cache_clear()
    assert "not found" in message


def test_aud_003_without_auditctl_fails(expect, fake_host, out) -> None:
    host = fake_host({"auditctl -l": out(127, "", "sh: auditctl: not found")})
    assert "auditd is missing" in expect.fail(audit_logging.test_aud_003, host=host,
                                              params=params("AUD-003"), evidence={})


def _netstate(live: dict[str, Any]) -> NetState:
    return NetState.parse(json.dumps({
        "nft": "/usr/sbin/nft", "live": live, "persisted_exists": False, "enabled": "enabled",
        "active": "active", "ss": {"rc": 0, "out": "", "err": ""}, "declaration": None,
        "mfs_conf": None,
    }))


def test_net_rules_on_an_unreadable_live_ruleset_are_errors(expect) -> None:
    state = _netstate({"rc": 1, "out": "", "err": "Operation not permitted (you must be root)"})
    snap = HostSnapshot("node", None, facts=HostFacts(ipv6=True))
    for check, rule_id in ((zero_trust_network.test_net_001, "NET-001"),
                           (zero_trust_network.test_net_010, "NET-010"),
                           (zero_trust_network.test_net_008, "NET-008")):
        message = expect.error(check, netstate=state, host_snapshot=snap,
                               params=params(rule_id), evidence={})
        assert "not permitted" in message, rule_id


def test_net_001_on_a_readable_empty_ruleset_still_fails(expect) -> None:
    state = _netstate({"rc": 0, "out": '{"nftables": []}', "err": ""})
    snap = HostSnapshot("node", None, facts=HostFacts())
    assert "no input filter chain" in expect.fail(zero_trust_network.test_net_001, netstate=state,
                                                  host_snapshot=snap, params=params("NET-001"),
                                                  evidence={})


def test_aud_006_a_log_rotated_away_during_find_is_no_error(expect, fake_host, fake_file,
                                                            out) -> None:
    files = {"/var/log/audit": fake_file(mode=0o750, directory=True)}
    vanished = out(1, "600 root /var/log/audit/audit.log\n",
                   "find: '/var/log/audit/audit.log.1': No such file or directory\n")
    host = fake_host({"-maxdepth 1": vanished, "find /var/log": ""}, files=files)
    expect.run(audit_logging.test_aud_006, host=host, params=params("AUD-006"), evidence={})
