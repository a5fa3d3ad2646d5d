"""m7i_profile + kernel_tuning on container nodes, which share the host's kernel.

node1 (m7i.8xlarge) and node2 (m7i.2xlarge) have their type pinned in the inventory; node3's
is unpinned for these plays and comes from the IMDSv2 emulator (tests/fixtures/
imds_emulator.py) running on node3's loopback and answering m7i.48xlarge, the size with EFA,
ENA Express and two NUMA nodes; node3 also gets MapR's layout. The host's global kernel values
are read on the controller before and after: nothing on the host may change.

On the fresh node2, refused input (tests/fixtures/kernel_tuning/refused.yml: an unknown size,
a negative value, a sysctl that does not exist) and a `--check --diff` run must leave the node
as it was (files, unit states, running values).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel_tuning_kit import (
    REFUSED,
    ROOT,
    Play,
    audit,
    expected_sysctls,
    node_size,
    node_state,
    play,
    read_sysctls,
    sizes,
    tuning,
)

from m7guard.checks.support.sysctl import is_namespaced

pytestmark = [pytest.mark.lab]

NODES = ("node1", "node2", "node3")
PINNED = {"node1": "m7i.8xlarge", "node2": "m7i.2xlarge"}
IMDS_NODE, IMDS_TYPE, IMDS_PORT = "node3", "m7i.48xlarge", 8169
TYPES = {**PINNED, IMDS_NODE: IMDS_TYPE}
FRESH = ("node2", IMDS_NODE)  # replaced by fresh nodes first
HOST_FILE = "/etc/m7guard/kernel_tuning/host-sysctl.conf"
SYSCTL_FILE = "/etc/sysctl.d/60-m7guard-kernel-tuning.conf"
HOST_SYS = ("/sys/kernel/mm/transparent_hugepage/enabled",
            "/sys/kernel/mm/transparent_hugepage/defrag")
HOST_ITEMS = ["transparent_hugepage (the host kernel)", "irqbalance (the host IRQs)",
              "nvme queues (the host devices)", "nvme_core.io_timeout (the host kernel)"]
# refused.yml's cases -> the start of the refusal message
REFUSALS = {
    "unknown size": "m7i_profile_instance_type: 'm7i.huge' is not an M7i instance type; known: "
                    "m7i.large, m7i.xlarge,",
    "negative value": "kernel_tuning_nvme_nr_requests must be a whole number from 1 to 65536, "
                      "not -1",
    "unknown sysctl": "no such kernel parameter on node2: kernel_tuning_sysctl_overrides: "
                      "net.ipv4.no_such_knob",
}
GET_WITHOUT_TOKEN = (
    "python3 -c 'import urllib.request as u, urllib.error as e\n"
    f"try: u.urlopen(\"http://127.0.0.1:{IMDS_PORT}/latest/meta-data/instance-type\", timeout=5)\n"
    "except e.HTTPError as x: print(x.code)'"
)


@dataclass
class ContainerRun:
    node_sizes: dict[str, tuple[int, int]]
    all_expected: dict[str, dict[str, str]]
    host_before: dict[str, str]
    host_after: dict[str, str]
    state_fresh: list[str]
    refused: Play
    state_after_refused: list[str]
    state_after_check: list[str]
    check: Play
    converge: Play
    again: Play
    running: dict[str, dict[str, str]]
    files: dict[str, dict[str, str]]
    sysctl_cat_config: dict[str, str]
    imds_log: list[dict[str, Any]]
    tokenless_status: str
    audit: dict[tuple[str, str], dict[str, Any]]


def _on_host(key: str) -> bool:
    return Path("/proc/sys", *key.split(".")).exists()


def _expected(all_expected: dict[str, str]) -> dict[str, str]:
    """What the role sets: its values less the keys of optional kernel features this kernel
    lacks (Yama's ptrace_scope)."""
    return {k: v for k, v in all_expected.items() if _on_host(k)}


def _host_values(keys: list[str]) -> dict[str, str]:
    """The host's kernel, read on the controller (which shares it)."""
    out = {}
    for key in keys:
        out[key] = " ".join(Path("/proc/sys", *key.split(".")).read_text().split())
    for path in HOST_SYS:
        out[path] = Path(path).read_text().strip()
    return out


def _start_imds(lab: Any) -> None:
    source = (ROOT / "tests/fixtures/imds_emulator.py").read_text()
    lab.ssh(IMDS_NODE, f"cat > /root/imds_emulator.py <<'M7G_EOF'\n{source}M7G_EOF\n")
    lab.ssh(IMDS_NODE,
            f"rm -f /root/imds.log; setsid python3 /root/imds_emulator.py --port {IMDS_PORT} "
            f"--instance-type {IMDS_TYPE} --log /root/imds.log </dev/null >/dev/null 2>&1 & "
            "echo $! > /root/imds.pid")
    for _ in range(50):
        if lab.ssh(IMDS_NODE, GET_WITHOUT_TOKEN, check=False).stdout.strip() == "401":
            return
        time.sleep(0.2)
    raise AssertionError("the IMDS emulator did not start on node3")


def _stop_imds(lab: Any) -> None:
    lab.ssh(IMDS_NODE, "[ -f /root/imds.pid ] && kill $(cat /root/imds.pid); rm -f /root/imds.pid",
            check=False)


def exercise(lab: Any, tmp: Path) -> ContainerRun:
    for node in FRESH:
        lab.m7guard("lab", "reset", node)
    lab.ssh(IMDS_NODE, "mkdir -p /opt/mapr/conf && echo 7.8.0 > /opt/mapr/MapRBuildVersion")
    # a container sees the host's memory and CPUs: the role derives from those
    node_sizes = {n: node_size(lab, n) for n in TYPES}
    all_expected = {n: expected_sysctls(t, *node_sizes[n]) for n, t in TYPES.items()}
    expected = {n: _expected(e) for n, e in all_expected.items()}
    all_keys = sorted({k for e in expected.values() for k in e})
    global_keys = [k for k in all_keys if not is_namespaced(k)]
    host_before = _host_values(global_keys)
    unpin = tmp / "unpin.yml"
    unpin.write_text(f"all:\n  hosts:\n    {IMDS_NODE}:\n      m7i_instance_type: ''\n")
    limit = ["--limit", ",".join(NODES), "-i", str(unpin)]
    _start_imds(lab)
    try:
        tokenless = lab.ssh(IMDS_NODE, GET_WITHOUT_TOKEN).stdout.strip()
        state_fresh = node_state(lab, "node2", all_keys)
        refused = play(lab, tmp / "facts", "--limit", "node2", playbook=REFUSED)
        state_after_refused = node_state(lab, "node2", all_keys)
        check = play(lab, tmp / "facts", *limit, "--check", "--diff")
        state_after_check = node_state(lab, "node2", all_keys)
        converge = play(lab, tmp / "facts", *limit)
        again = play(lab, tmp / "facts", *limit)
        log = lab.ssh(IMDS_NODE, "cat /root/imds.log").stdout
    finally:
        _stop_imds(lab)
    host_after = _host_values(global_keys)
    running = {n: read_sysctls(lab, n, sorted(k for k in expected[n] if is_namespaced(k)))
               for n in NODES}
    files = {n: {p: lab.ssh(n, f"cat {p}", check=False).stdout for p in (
        SYSCTL_FILE, HOST_FILE, "/opt/mapr/conf/env_override.sh",
        "/etc/systemd/system/mapr-warden.service.d/60-m7guard-numa.conf",
        "/etc/udev/rules.d/61-m7guard-ena-mtu.rules", "/etc/udev/rules.d/60-m7guard-nvme.rules",
        "/etc/security/limits.d/90-m7guard-mapr.conf")} for n in NODES}
    cat_config = {n: lab.ssh(n, "/lib/systemd/systemd-sysctl --cat-config").stdout
                  for n in NODES}
    results = audit(lab, tmp / "audit", ",".join(NODES))
    return ContainerRun(node_sizes, all_expected, host_before, host_after, state_fresh, refused,
                        state_after_refused, state_after_check, check, converge, again, running,
                        files, cat_config, [json.loads(line) for line in log.splitlines()],
                        tokenless, results)


@pytest.fixture(scope="module")
def run(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> ContainerRun:
    return exercise(lab, tmp_path_factory.mktemp("kernel_tuning_containers"))


def test_the_play_succeeds_and_the_second_run_changes_nothing(run: ContainerRun) -> None:
    for node in NODES:
        assert run.converge.recap[node]["failed"] == 0
        assert run.again.changed(node) == 0, run.again.out[-4000:]
    for node in FRESH:  # node1 may have been tuned by an earlier test
        assert run.converge.changed(node) > 0


def test_nothing_on_the_host_changes(run: ContainerRun) -> None:
    assert "vm.swappiness" in run.host_before and "net.core.rmem_max" in run.host_before
    assert run.host_after == run.host_before


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_input_is_refused_naming_the_variable(run: ContainerRun, case: str) -> None:
    assert run.refused.recap["node2"]["changed"] == 0
    assert run.refused.facts["node2.refused"][case].startswith(REFUSALS[case])


def test_refused_input_and_check_mode_change_nothing(run: ContainerRun) -> None:
    assert run.state_after_refused == run.state_fresh
    assert run.state_after_check == run.state_fresh
    assert run.check.changed("node2") > 0  # check mode saw what it would change
    assert "+net.ipv4.tcp_retries2 = 5" in run.check.out  # and showed it (--diff)


@pytest.mark.parametrize("node", NODES)
def test_per_namespace_keys_are_applied(run: ContainerRun, node: str) -> None:
    expected = _expected(run.all_expected[node])
    for key, value in run.running[node].items():
        assert value == expected[key], (node, key)
    assert run.running[node]["net.ipv4.tcp_retries2"] == "5"
    assert run.running[node]["net.ipv4.ip_local_port_range"] == "32768 50027"
    if node == "node1":  # 12.5 Gbps: 16 MiB, more than the kernel's default
        assert run.running[node]["net.ipv4.tcp_rmem"] == "4096 131072 16777216"


@pytest.mark.parametrize("node", NODES)
def test_global_keys_are_persisted_and_listed_as_not_applied(run: ContainerRun,
                                                             node: str) -> None:
    expected = _expected(run.all_expected[node])
    global_keys = sorted(k for k in expected if not is_namespaced(k))
    absent = [f"{k} (not in this kernel)" for k in run.all_expected[node] if not _on_host(k)]
    facts = run.converge.facts[node]
    assert facts["kernel_tuning_not_applied"] == global_keys + absent + HOST_ITEMS
    host_file = run.files[node][HOST_FILE]
    sysctl_file = run.files[node][SYSCTL_FILE]
    for key in global_keys:
        assert f"\n{key} = {expected[key]}\n" in host_file, key
        assert f"{key} =" not in sysctl_file, key
    for key in expected:
        if is_namespaced(key):
            assert f"\n{key} = {expected[key]}\n" in sysctl_file, key
    # what systemd-sysctl applies when the container boots: none of the host's keys of ours
    config = run.sysctl_cat_config[node]
    assert HOST_FILE not in config
    ours = config.split(f"# {SYSCTL_FILE}\n", 1)[1].split("\n# /", 1)[0]
    assert "net.ipv4.tcp_retries2 = 5" in ours
    for key in global_keys:
        assert f"{key} =" not in ours, key


def _task_results(out: str, task: str) -> dict[str, str]:
    """host -> ok/changed/skipping/failed of one task in a play's output."""
    found = re.search(rf"TASK \[m7guard.hardening.kernel_tuning : {re.escape(task)}\][^\n]*\n(.*?)"
                      r"(?=\nTASK |\nRUNNING |\nPLAY )", out, re.DOTALL)
    assert found, task
    return {m[1]: m[0] for m in re.findall(r"^(ok|changed|skipping|failed|fatal): \[(\w+)\]",
                                           found.group(1), re.MULTILINE)}


@pytest.mark.parametrize("task", ["PERF-007 | Set transparent huge pages now",
                                  "PERF-009 | Install irqbalance",
                                  "PERF-009 | Keep irqbalance running",
                                  "PERF-010 | Apply the NVMe udev rule to the present devices",
                                  "PERF-011 | Set nvme_core.io_timeout now (it is writable at run "
                                  "time)"])
def test_nothing_is_applied_to_the_hosts_sys_from_a_container(run: ContainerRun,
                                                               task: str) -> None:
    assert _task_results(run.converge.out, task) == dict.fromkeys(NODES, "skipping")


def test_container_nodes_are_reported_as_such(run: ContainerRun) -> None:
    for node in NODES:
        applied = run.converge.facts[node]["kernel_tuning_applied"]
        assert applied["nvme_io_timeout_runtime"] == "not applied (container)"
        assert applied["container"] == "podman"
        rule = run.files[node]["/etc/udev/rules.d/60-m7guard-nvme.rules"]
        assert 'TEST=="/run/systemd/container", GOTO="m7guard_nvme_end"' in rule


def test_instance_type_from_imdsv2(run: ContainerRun) -> None:
    profile = run.converge.facts[IMDS_NODE]["m7i_profile_facts"]
    assert profile["source"] == "imds" and profile["instance_type"] == IMDS_TYPE
    assert (profile["efa"], profile["ena_express"], profile["numa_nodes"]) == (True, True, 2)
    for node, instance_type in PINNED.items():
        pinned = run.converge.facts[node]["m7i_profile_facts"]
        assert (pinned["source"], pinned["instance_type"]) == ("inventory", instance_type)


def test_the_emulator_refuses_a_tokenless_request_and_the_role_uses_imdsv2(
    run: ContainerRun,
) -> None:
    assert run.tokenless_status == "401"
    role_requests = [e for e in run.imds_log if e["path"] != "/latest/meta-data/instance-type"
                     or e["token_given"]]
    assert role_requests, run.imds_log
    # every GET the role made carried a valid token; every token request had a TTL
    assert all(e["token_valid"] for e in role_requests if e["method"] == "GET")
    assert all(e["ttl_header"] for e in role_requests if e["method"] == "PUT")
    assert [e["method"] for e in role_requests[:2]] == ["PUT", "GET"]
    refused = [e for e in run.imds_log if e["status"] == 401]
    assert len(refused) >= 1 and all(not e["token_given"] for e in refused)


def test_multi_numa_ena_express_size_gets_its_extras(run: ContainerRun) -> None:
    files = run.files[IMDS_NODE]
    assert "NUMAPolicy=bind\nNUMAMask=0\nCPUAffinity=numa" in files[
        "/etc/systemd/system/mapr-warden.service.d/60-m7guard-numa.conf"]
    assert 'ATTR{mtu}="8900"' in files["/etc/udev/rules.d/61-m7guard-ena-mtu.rules"]
    assert run.running[IMDS_NODE]["net.ipv4.tcp_limit_output_bytes"] == "1048576"
    memtotal, vcpus = run.node_sizes[IMDS_NODE]
    df = tuning.derive(sizes.profile(IMDS_TYPE), memtotal, 4, 2, vcpus)["data_fabric"]
    env = files["/opt/mapr/conf/env_override.sh"]
    assert "-XX:+UseNUMA" in env
    assert f'export SPARK_EXECUTOR_CORES="{df["spark_executor_cores"]}"' in env
    assert f'export MAPR_MEMORY_OPTS="{df["mapr_memory_opts"]}"' in env
    for node in PINNED:  # one NUMA node, no ENA Express, no MapR
        assert files_missing(run, node, "/etc/udev/rules.d/61-m7guard-ena-mtu.rules")
        assert files_missing(run, node, "/opt/mapr/conf/env_override.sh")


def files_missing(run: ContainerRun, node: str, path: str) -> bool:
    return run.files[node][path] == ""


def test_audit_on_containers(run: ContainerRun) -> None:
    for node in NODES:
        for rule in ("KERN-008", "KERN-015", "PERF-003", "PERF-004", "PERF-005", "PERF-008"):
            assert run.audit[(node, rule)]["state"] == "pass", run.audit[(node, rule)]
        for rule in ("KERN-001", "PERF-001", "PERF-002", "PERF-006", "PERF-007", "PERF-010"):
            assert run.audit[(node, rule)]["state"] == "notapplicable", (node, rule)
    assert run.audit[(IMDS_NODE, "PERF-012")]["state"] == "pass"
    evidence = run.audit[("node1", "PERF-005")]["evidence"]
    assert evidence["host_kernel_keys"] == ["net.core.rmem_max", "net.core.wmem_max"]
