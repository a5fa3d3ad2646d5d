"""Every KERN-* check passes on a compliant lab node and fails on a non-compliant one.

Per-namespace keys (net.ipv4.*, net.ipv6.*) are changed inside the container node node3;
keys of the host kernel (kernel.*, fs.*) are changed only on the VM node vm1, never from a
container. Each scenario sets running values with `sysctl -w` and persisted values with files
in /etc/sysctl.d/, runs `m7guard audit --limit NODE`, and the original running values
are restored and the files removed afterwards. Each node has its own run of the scenarios,
made when a test first asks for that node, so that vm1's cases run beside the container
tests (marker vm) and node3's with them, and neither process touches the other's node.

Scenarios:
  compliant      running and persisted values allowed                       -> pass
  running-drift  persisted allowed, running changed with sysctl -w          -> fail
  persisted-bad  running allowed, a later sysctl.d file sets a bad value     -> fail
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from m7guard.checks.support.sysctl import is_namespaced
from m7guard.results import Results

pytestmark = [pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
CONTAINER, VM = "node3", "vm1"
GOOD_FILE = "/etc/sysctl.d/60-m7guard-test.conf"
BAD_FILE = "/etc/sysctl.d/99-zz-m7guard-test.conf"

# rule -> (keys, a compliant value, a non-compliant value)
RULES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "KERN-001": (("kernel.kptr_restrict",), "1", "0"),
    "KERN-002": (("kernel.dmesg_restrict",), "1", "0"),
    "KERN-003": (("kernel.randomize_va_space",), "2", "1"),
    "KERN-004": (("fs.suid_dumpable",), "0", "1"),
    "KERN-005": (("kernel.yama.ptrace_scope",), "1", "0"),  # never 3: it cannot be lowered
    "KERN-006": (("kernel.unprivileged_bpf_disabled",), "2", "0"),  # never 1: it is sticky
    "KERN-007": (("fs.protected_hardlinks", "fs.protected_symlinks"), "1", "0"),
    "KERN-008": (("net.ipv4.ip_forward",), "0", "1"),
    "KERN-009": (("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"), "1", "0"),
    "KERN-010": (
        ("net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects"),
        "0",
        "1",
    ),
    "KERN-011": (
        ("net.ipv6.conf.all.accept_redirects", "net.ipv6.conf.default.accept_redirects"),
        "0",
        "1",
    ),
    "KERN-012": (
        ("net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects"),
        "0",
        "1",
    ),
    "KERN-013": (
        ("net.ipv4.conf.all.accept_source_route", "net.ipv4.conf.default.accept_source_route"),
        "0",
        "1",
    ),
    "KERN-014": (
        ("net.ipv4.conf.all.log_martians", "net.ipv4.conf.default.log_martians"),
        "1",
        "0",
    ),
    "KERN-015": (("net.ipv4.tcp_syncookies",), "1", "0"),
    "KERN-016": (("net.ipv4.icmp_echo_ignore_broadcasts",), "1", "0"),
}
GLOBAL_RULES = sorted(r for r, (keys, _, _) in RULES.items() if not is_namespaced(keys[0]))
NAMESPACED_RULES = sorted(r for r, (keys, _, _) in RULES.items() if is_namespaced(keys[0]))


def _rules_for(node: str) -> list[str]:
    return NAMESPACED_RULES if node == CONTAINER else sorted(RULES)


def _values(node: str, which: int) -> dict[str, str]:
    out = {}
    for rule in _rules_for(node):
        keys, good, bad = RULES[rule]
        for key in keys:
            if node == CONTAINER:
                assert is_namespaced(key), f"{key} belongs to the host kernel: never set it here"
            out[key] = (good, bad)[which]
    return out


def _conf(values: dict[str, str]) -> str:
    return "".join(f"{k} = {v}\n" for k, v in values.items())


def _write(path: str, text: str) -> str:
    return f"printf %s {shlex.quote(text)} > {path}"


def _sysctl_w(values: dict[str, str]) -> str:
    return "sysctl -q -w " + " ".join(shlex.quote(f"{k}={v}") for k, v in values.items())


@dataclass
class Scenario:
    results: Results
    exit_code: int
    pytest_exit: int
    pytest_tail: str


def _audit(lab, node: str, out: Path) -> int:
    proc = lab.m7guard(
        "audit",
        "-i",
        str(lab.inventory),
        "--limit",
        node,
        "--profile",
        "kernel",
        "--out",
        str(out),
        "--format",
        "json",
        check=False,
    )
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return proc.returncode


def _plain_pytest(lab) -> tuple[int, str]:
    """The checks run as plain pytest, the way an operator would."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "m7guard/checks/kernel.py",
            f"--hosts=ansible://{CONTAINER}",
            f"--ansible-inventory={lab.inventory}",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=no",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    return proc.returncode, proc.stdout.strip().splitlines()[-1]


def _run_scenarios(lab, node: str, tmp_path_factory: pytest.TempPathFactory,
                   ) -> dict[str, Scenario]:
    """The three scenarios on one node."""
    keys = list(_values(node, 0))
    raw = lab.ssh(node, "sysctl -n " + " ".join(keys)).stdout.split("\n")
    saved = dict(zip(keys, (v.strip() for v in raw), strict=False))
    plan = {
        "compliant": [
            _write(GOOD_FILE, _conf(_values(node, 0))),
            f"rm -f {BAD_FILE}",
            _sysctl_w(_values(node, 0)),
        ],
        "running-drift": [_sysctl_w(_values(node, 1))],
        "persisted-bad": [_sysctl_w(_values(node, 0)), _write(BAD_FILE, _conf(_values(node, 1)))],
    }
    done: dict[str, Scenario] = {}
    try:
        for name, cmds in plan.items():
            lab.ssh(node, " && ".join(cmds))
            out = tmp_path_factory.mktemp(f"{name}-{node}")
            code = _audit(lab, node, out)
            pytest_exit, tail = _plain_pytest(lab) if node == CONTAINER else (0, "")
            done[name] = Scenario(Results.load(out / "results.json"), code, pytest_exit, tail)
    finally:
        lab.ssh(node, f"rm -f {GOOD_FILE} {BAD_FILE} && {_sysctl_w(saved)}")
    return done


@pytest.fixture(scope="module")
def scenarios_of(lab, tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[[str], dict[str, Scenario]]:
    """node -> its three scenarios, run once per node on first use."""
    made: dict[str, dict[str, Scenario]] = {}

    def get(node: str) -> dict[str, Scenario]:
        if node not in made:
            made[node] = _run_scenarios(lab, node, tmp_path_factory)
        return made[node]

    return get


def _result(s: Scenario, node: str, rule: str) -> dict:
    return next(r for r in s.results.results if r["host"] == node and r["rule"] == rule)


def _cases() -> list:
    return [
        pytest.param(node, rule, marks=[pytest.mark.vm] if node == VM else [], id=f"{node}-{rule}")
        for node in (CONTAINER, VM) for rule in _rules_for(node)
    ]


def _nodes(*nodes: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("node", [
        pytest.param(n, marks=[pytest.mark.vm] if n == VM else [], id=n) for n in nodes])


@pytest.mark.parametrize(("node", "rule"), _cases())
def test_compliant_node_passes(scenarios_of, node: str, rule: str) -> None:
    r = _result(scenarios_of(node)["compliant"], node, rule)
    assert r["state"] == "pass", r
    for record in r["evidence"]["sysctl"]:
        assert record["persisted_in"] in (f"{GOOD_FILE}:{i}" for i in range(1, 40)) or (
            record["persisted_in"] or ""
        ).startswith("/usr/lib/sysctl.d/99-protect-links.conf"), record


@pytest.mark.parametrize(("node", "rule"), _cases())
def test_running_value_drift_fails(scenarios_of, node: str, rule: str) -> None:
    r = _result(scenarios_of(node)["running-drift"], node, rule)
    assert r["state"] == "fail", r
    keys, _good, bad = RULES[rule]
    for key in keys:
        assert f"{key} is {bad} at run time; wanted:" in r["message"]


@pytest.mark.parametrize(("node", "rule"), _cases())
def test_later_sysctl_file_with_a_bad_value_fails(scenarios_of, node: str, rule: str) -> None:
    r = _result(scenarios_of(node)["persisted-bad"], node, rule)
    assert r["state"] == "fail", r
    keys, _good, bad = RULES[rule]
    assert "at run time" not in r["message"]
    for key in keys:
        assert f"{key} = {bad} in {BAD_FILE}:" in r["message"]
    overridden = [o for rec in r["evidence"]["sysctl"] for o in rec["overridden"]]
    assert any(o.startswith(GOOD_FILE) for o in overridden)


@_nodes(CONTAINER)
@pytest.mark.parametrize("rule", GLOBAL_RULES)
def test_host_kernel_keys_are_notapplicable_on_a_container(scenarios_of, node: str,
                                                           rule: str) -> None:
    for scenario in scenarios_of(node).values():
        r = _result(scenario, node, rule)
        assert r["state"] == "notapplicable"
        assert "condition not_container does not hold" in r["message"]
        assert "/run/.containerenv exists" in r["message"]


@_nodes(CONTAINER, VM)
def test_audit_exit_code_follows_the_node_state(scenarios_of, node: str) -> None:
    scenarios = scenarios_of(node)
    assert scenarios["compliant"].exit_code == 0
    assert scenarios["running-drift"].exit_code == 2
    assert scenarios["persisted-bad"].exit_code == 2


@_nodes(CONTAINER)
def test_plain_pytest_runs_the_checks(scenarios_of, node: str) -> None:
    scenarios = scenarios_of(node)
    n = len(NAMESPACED_RULES)
    assert scenarios["compliant"].pytest_exit == 0
    assert scenarios["compliant"].pytest_tail.startswith(f"{n} passed, {len(GLOBAL_RULES)} skipped")
    assert scenarios["running-drift"].pytest_exit == 1
    assert scenarios["running-drift"].pytest_tail.startswith(
        f"{n} failed, {len(GLOBAL_RULES)} skipped"
    )


@_nodes(VM)
def test_evidence_is_recorded(scenarios_of, node: str) -> None:
    r = _result(scenarios_of(node)["running-drift"], node, "KERN-003")
    (record,) = r["evidence"]["sysctl"]
    assert record == record | {
        "key": "kernel.randomize_va_space",
        "read": "/proc/sys/kernel/randomize_va_space",
        "running": "1",
        "persisted": "2",
        "wanted": "2",
        "compliant": False,
    }
    assert GOOD_FILE in r["evidence"]["config_files"]
    json.dumps(r)  # the evidence is plain JSON
