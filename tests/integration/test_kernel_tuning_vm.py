"""m7i_profile + kernel_tuning on vm1, the lab node with a real kernel and an emulated NVMe drive.

vm1 runs under software emulation, so it gets three plays (one converge, one idempotence run,
one reboot), shared by all tests here; refused input and --check are tested on containers
(test_kernel_tuning_containers.py):
  1. a fresh vm1 (`lab reset`), MapR's layout created, KERN-007 put out of compliance at run
     time (Debian persists it already) -> audit: every KERN-* and PERF-* check fails;
  2. converge (no reboot allowed) -> kernel_tuning_reboot_required, global sysctls, NVMe
     queues and io_timeout hold at run time;
  3. a second run -> changed=0, the reboot still pending;
  4. `--tags reboot -e kernel_tuning_reboot_ok=true` -> the role reboots vm1; afterwards
     everything still holds and nvme_core.io_timeout is the maximum from modprobe.d;
  5. audit: every KERN-* and PERF-* check passes;
  6. the KERN and PERF breaks of tests/battery/ that need vm1 (the host kernel's keys, /sys,
     NVMe, irqbalance), each turning its rule to fail, every break restored.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from battery import breaks_of
from battery.runner import Cells
from battery.runner import run as battery_run
from kernel_tuning_kit import (
    DEFAULTS,
    Play,
    audit,
    expected_sysctls,
    node_size,
    play,
    read_sysctls,
    sizes,
)

from m7guard.checks.support.sysctl import is_namespaced

pytestmark = [pytest.mark.lab, pytest.mark.vm]

VM = "vm1"
MAX_IO_TIMEOUT = "4294967295"
RULES = [f"KERN-{n:03d}" for n in range(1, 17)] + [f"PERF-{n:03d}" for n in range(1, 13)]
FRESH_FIXTURE = (
    # MapR's layout (MapR cannot be installed here): PERF-012 applies, the role sizes the JVMs
    "mkdir -p /opt/mapr/conf && echo 7.8.0.0.20240801 > /opt/mapr/MapRBuildVersion && "
    "printf '#!/bin/bash\\nexport MAPR_SUBNETS=10.0.2.0/24\\n' > /opt/mapr/conf/env_override.sh && "
    # Debian persists the link protections (KERN-007) itself: break them at run time
    "sysctl -q -w fs.protected_hardlinks=0 fs.protected_symlinks=0"
)
@dataclass
class VmRun:
    before: dict[tuple[str, str], dict[str, Any]]
    after: dict[tuple[str, str], dict[str, Any]]
    converge: Play
    again: Play
    reboot: Play
    expected: dict[str, str]
    running_converged: dict[str, str]
    running_rebooted: dict[str, str]
    nvme_converged: str
    nvme_rebooted: str
    boot_ids: tuple[str, str, str]
    timings: dict[str, float] = field(default_factory=dict)


NVME_READ = ("for a in scheduler nomerges nr_requests read_ahead_kb; do "
             "printf '%s=%s\\n' $a \"$(cat /sys/block/nvme0n1/queue/$a)\"; done; "
             "printf 'nr_tags=%s\\n' \"$(cat /sys/block/nvme0n1/mq/0/nr_tags)\"; "
             "printf 'io_timeout=%s\\n' \"$(cat /sys/module/nvme_core/parameters/io_timeout)\"; "
             "printf 'thp=%s\\n' \"$(cat /sys/kernel/mm/transparent_hugepage/enabled)\"")


def exercise(lab: Any, tmp: Path) -> VmRun:
    t: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        t[name] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()

    lab.m7guard("lab", "reset", VM)
    lab.ssh(VM, FRESH_FIXTURE)
    boot_fresh = lab.ssh(VM, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    lap("reset")
    expected = expected_sysctls("m7i.large", *node_size(lab, VM))
    keys = sorted(expected)
    before = audit(lab, tmp / "audit-fresh", VM)
    lap("audit fresh")
    converge = play(lab, tmp / "facts", "--limit", VM)
    running_converged = read_sysctls(lab, VM, keys)
    nvme_converged = lab.ssh(VM, NVME_READ).stdout
    lap("converge")
    again = play(lab, tmp / "facts", "--limit", VM)
    boot_before = lab.ssh(VM, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    lap("idempotence")
    reboot = play(lab, tmp / "facts", "--limit", VM, "--tags", "reboot",
                  "-e", "kernel_tuning_reboot_ok=true")
    boot_after = lab.ssh(VM, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    running_rebooted = read_sysctls(lab, VM, keys)
    nvme_rebooted = lab.ssh(VM, NVME_READ).stdout
    lap("reboot")
    after = audit(lab, tmp / "audit-tuned", VM)
    lap("audit tuned")
    return VmRun(before, after, converge, again, reboot, expected, running_converged,
                 running_rebooted, nvme_converged, nvme_rebooted,
                 (boot_fresh, boot_before, boot_after), t)


@pytest.fixture(scope="module")
def vm(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> VmRun:
    run = exercise(lab, tmp_path_factory.mktemp("kernel_tuning_vm"))
    print(f"\nkernel_tuning on vm1, seconds per step: {run.timings}")
    return run


def _values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@pytest.mark.parametrize("rule", RULES)
def test_every_check_fails_on_a_fresh_vm(vm: VmRun, rule: str) -> None:
    r = vm.before[(VM, rule)]
    assert r["state"] == "fail", r


@pytest.mark.parametrize("rule", RULES)
def test_every_check_passes_after_the_play(vm: VmRun, rule: str) -> None:
    r = vm.after[(VM, rule)]
    assert r["state"] == "pass", r


def test_converge_applies_the_global_sysctls(vm: VmRun) -> None:
    assert vm.converge.changed(VM) > 0
    global_keys = [k for k in vm.expected if not is_namespaced(k)]
    assert "vm.min_free_kbytes" in global_keys and "net.core.rmem_max" in global_keys
    for key, value in vm.expected.items():
        assert vm.running_converged[key] == value, key
    facts = vm.converge.facts[VM]
    assert facts["kernel_tuning_not_applied"] == []
    assert facts["kernel_tuning_bootloader"] == "none"
    assert facts["m7i_profile_facts"]["instance_type"] == "m7i.large"
    assert facts["m7i_profile_facts"]["source"] == "inventory"


def test_converge_sets_the_nvme_queues(vm: VmRun) -> None:
    values = _values(vm.nvme_converged)
    assert "[none]" in values["scheduler"]
    assert values["nomerges"] == str(DEFAULTS["kernel_tuning_nvme_nomerges"])
    bound = min(DEFAULTS["kernel_tuning_nvme_nr_requests"], int(values["nr_tags"]))
    assert values["nr_requests"] == str(bound)
    assert values["read_ahead_kb"] == str(DEFAULTS["kernel_tuning_nvme_read_ahead_kb"])
    assert values["thp"].split()[-1] == "[never]"
    # nvme_core.io_timeout is writable at run time on this kernel: the role wrote it
    assert values["io_timeout"] == MAX_IO_TIMEOUT
    applied = vm.converge.facts[VM]["kernel_tuning_applied"]
    assert applied["nvme_io_timeout_runtime"] == "written"


def test_a_reboot_is_required_and_not_done_without_consent(vm: VmRun) -> None:
    assert vm.converge.facts[VM]["kernel_tuning_reboot_required"] is True
    assert "Reboot into the boot-time settings" in vm.converge.out
    fresh, converged, rebooted = vm.boot_ids
    assert fresh and fresh == converged  # two runs without kernel_tuning_reboot_ok: no reboot
    assert rebooted != converged


def test_second_run_changes_nothing(vm: VmRun) -> None:
    assert vm.again.changed(VM) == 0, vm.again.out[-4000:]
    assert vm.again.recap[VM]["failed"] == 0
    assert vm.again.facts[VM]["kernel_tuning_reboot_required"] is True  # still pending


def test_reboot_with_consent_keeps_everything(vm: VmRun) -> None:
    assert vm.reboot.changed(VM) == 1, vm.reboot.out[-4000:]
    assert re.search(r"TASK \[kernel_tuning : Reboot into the boot-time settings\].*?\n"
                     r"changed: \[vm1\]", vm.reboot.out, re.DOTALL)
    assert vm.reboot.facts[VM]["kernel_tuning_reboot_required"] is False
    for key, value in vm.expected.items():
        assert vm.running_rebooted[key] == value, key
    values = _values(vm.nvme_rebooted)
    assert "[none]" in values["scheduler"]
    assert values["nomerges"] == "1"
    assert values["nr_requests"] == str(min(1024, int(values["nr_tags"])))
    assert values["read_ahead_kb"] == "128"
    assert values["thp"].split()[-1] == "[never]"
    assert values["io_timeout"] == MAX_IO_TIMEOUT  # from /etc/modprobe.d at module load


def test_evidence_of_the_size_derived_checks(vm: VmRun) -> None:
    r = vm.after[(VM, "PERF-005")]
    assert r["evidence"]["instance"]["type"] == "m7i.large"
    assert r["evidence"]["target"]["bandwidth_gbps"] == sizes.profile("m7i.large")[
        "network_baseline_gbps"]
    fresh = vm.before[(VM, "PERF-012")]
    assert "not set in /opt/mapr/conf/env_override.sh" in fresh["message"]
    tuned = vm.after[(VM, "PERF-012")]
    assert tuned["evidence"]["used_mib"] <= tuned["evidence"]["budget_mib"]


def test_mutation_battery_on_the_vm(vm: VmRun, lab: Any, tmp_path: Path) -> None:
    """The KERN and PERF breaks of tests/battery/ that need vm1 (its own kernel, /sys and
    emulated NVMe drive), on the tuned vm1: each turns its rule to fail and no rule that was
    not broken moves (tuning profile: the KERN and PERF rules). vm1 audits slowly (software
    emulation), so a round breaks several rules at once (one break of each; share=True);
    each property still has its own round."""
    breaks = breaks_of("vm1 kernel")

    def cells(nodes, tag: str) -> Cells:
        found = audit(lab, tmp_path / tag, ",".join(nodes))
        return {key: (r["state"], r["message"]) for key, r in found.items()}

    report = battery_run(lambda node, cmd: lab.ssh(node, cmd, check=False), cells, breaks,
                         (VM,), share=True)
    print("\n" + report.summary())
    assert report.problems == [], "\n".join(report.problems)
    assert report.breaks == len(breaks) > 0
