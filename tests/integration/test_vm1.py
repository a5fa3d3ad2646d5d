"""vm1, the lab node with its own kernel and an emulated NVMe drive: kernel_tuning (with
m7i_profile), os_baseline's kernel-module step and audit_logging, in the order site.yml
applies them, and the KERN, PERF, AUD and OSB-004 checks: the rules whose evidence is a
kernel's, which a container node shares with the host.

vm1 runs under software emulation, where every play, reboot and audit costs minutes, so one
story serves every test here, told once:
  1. a fresh vm1 (`lab reset`) with a stand-in Data Fabric layout: the recording `maprcli`
     stand-in (tests/standin/maprcli.py) and env_override.sh, so that AUD-010 and
     PERF-012 apply; KERN-007 put out of compliance at run time (Debian persists it already)
     -> audit: every KERN-*, PERF-* and AUD-* check fails, and OSB-004;
  2. kernel_tuning (no reboot allowed) -> kernel_tuning_reboot_required, global sysctls, NVMe
     queues and io_timeout hold at run time; a second run -> changed=0, the reboot still
     pending;
  3. os_baseline's kernel-module step (`--tags OSB-004`), the one step of the role that
     differs on a VM: in --check --diff on the fresh vm1, before step 2, which must change
     nothing; then for real, and once more, which must change nothing;
  4. audit_logging for real (audit_logging_reboot_ok, so the rules become immutable) and once
     more, which must change nothing; the AUD audit passes; a record reaches the collector;
     touching /etc/sudoers leaves a kernel audit record with the rule's key, forwarded too;
     neither role has rebooted vm1;
  5. `--tags reboot -e kernel_tuning_reboot_ok=true` -> the role reboots vm1; afterwards the
     sysctls, NVMe settings and nvme_core.io_timeout (from modprobe.d) hold, and the audit
     rules are loaded again, immutable;
  6. audit: every KERN-*, PERF-* check, OSB-004 and the kernel's AUD checks pass;
  7. the mutation battery's breaks that need vm1 (tests/battery/: kernel auditing, auditd at
     boot; the host kernel's keys, /sys, NVMe, irqbalance; kernel modules), each turning its
     rule to fail and no other rule of its profile (audit; tuning and OSB-004) moving, every
     break restored.
The other OSB rules read files, packages, accounts and sshd, the same on a VM as in a
container: they are judged, broken and repaired on the container data nodes of every
release (test_os_baseline.py, test_site.py), as are os_baseline as a whole, its check mode
and second run. Refused input and --check of the other roles are tested on containers too
(test_kernel_tuning_containers.py, test_audit_logging.py).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audit_logging_kit import (
    COLLECTOR,
    KERNEL_RULES,
    Laps,
    Story,
    assert_documented_commands_issued_once,
    assert_forwarded,
    assert_second_run_changes_nothing,
    converge,
    mapr_layout,
    result,
    wait_for,
)
from audit_logging_kit import RULES as AUD_RULES
from audit_logging_kit import audit as audit_of
from battery import breaks_of
from battery.runner import Cells
from battery.runner import run as battery_run
from kernel_tuning_kit import (
    DEFAULTS,
    Play,
    expected_sysctls,
    node_size,
    play,
    read_sysctls,
    sizes,
)
from labkit import configure_collector, play_recap
from os_baseline_kit import PLAYBOOK as BASELINE
from os_baseline_kit import SNAPSHOT as BASELINE_SNAPSHOT

from m7guard.checks.support.sysctl import is_namespaced
from m7guard.results import Results

pytestmark = [pytest.mark.lab, pytest.mark.vm]

ROOT = Path(__file__).resolve().parents[2]
VM = "vm1"
MAX_IO_TIMEOUT = "4294967295"
# os_baseline's one step that differs on a VM: kernel modules (OSB-004)
VM_ONLY = ("--tags", "OSB-004")
KERN_RULES = [f"KERN-{n:03d}" for n in range(1, 17)] + [f"PERF-{n:03d}" for n in range(1, 13)]

# The rules of the two roles, audited at once: the shipped profiles audit and tuning together.
PROFILE = "vm1"
PROFILE_YAML = f"""---
id: {PROFILE}
title: vm1 in the tests
description: The areas of the profiles audit and tuning, and OSB-004, audited at once on vm1.
frameworks: [soc2, hipaa, pci_dss_4]
select:
  - areas: [audit, kernel, performance]
  - ids: [OSB-004]
"""
# The kernel battery's rules: the profile tuning's and OSB-004, the one OSB rule judged on
# vm1 alone (a container's modules are the host's).
KERNEL_PROFILE = "vm1_kernel"
KERNEL_PROFILE_YAML = f"""---
id: {KERNEL_PROFILE}
title: vm1's kernel battery in the tests
description: The profile tuning's rules and OSB-004 (kernel modules).
frameworks: [soc2, hipaa, pci_dss_4]
select:
  - areas: [kernel, performance]
  - ids: [OSB-004]
"""
KERNEL_FIXTURE = (
    # PERF-012 applies with MapR's env_override.sh, and the role sizes the JVMs in it
    "printf '#!/bin/bash\\nexport MAPR_SUBNETS=10.0.2.0/24\\n' > /opt/mapr/conf/env_override.sh && "
    # Debian persists the link protections (KERN-007) itself: break them at run time
    "sysctl -q -w fs.protected_hardlinks=0 fs.protected_symlinks=0"
)
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
NVME_READ = ("for a in scheduler nomerges nr_requests read_ahead_kb; do "
             "printf '%s=%s\\n' $a \"$(cat /sys/block/nvme0n1/queue/$a)\"; done; "
             "printf 'nr_tags=%s\\n' \"$(cat /sys/block/nvme0n1/mq/0/nr_tags)\"; "
             "printf 'io_timeout=%s\\n' \"$(cat /sys/module/nvme_core/parameters/io_timeout)\"; "
             "printf 'thp=%s\\n' \"$(cat /sys/kernel/mm/transparent_hugepage/enabled)\"")


@dataclass
class Tuning:
    """What kernel_tuning did on vm1."""
    converge: Play
    again: Play
    reboot: Play
    expected: dict[str, str]
    running_converged: dict[str, str]
    running_rebooted: dict[str, str]
    nvme_converged: str
    nvme_rebooted: str
    boot_ids: tuple[str, str, str]  # fresh, after both roles' runs, after the reboot


@dataclass
class Vm1:
    fresh: Results  # the fresh vm1: KERN, PERF and AUD rules
    after: Results  # after both roles and the reboot: the same rules
    tuning: Tuning
    audit_logging: Story  # its fresh and later audits are the two above
    baseline: tuple[str, str]  # the two runs of os_baseline's modules step (output)
    baseline_untouched: dict[str, Any]  # the step's --check --diff on the fresh vm1
    timings: dict[str, float]
    policies: Path  # the catalog with the profiles of these tests


def audit(lab: Any, out: Path, limit: str, policies: Path) -> Results:
    """The KERN, PERF and AUD rules (profile PROFILE)."""
    return audit_of(lab, out, limit, "--policies", str(policies), profile=PROFILE)


def _policies(tmp: pytest.TempPathFactory) -> Path:
    policies = tmp.mktemp("policies") / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "profiles" / f"{PROFILE}.yml").write_text(PROFILE_YAML)
    (policies / "profiles" / f"{KERNEL_PROFILE}.yml").write_text(KERNEL_PROFILE_YAML)
    return policies


def _story(lab: Any, tmp: pytest.TempPathFactory) -> Vm1:
    lap = Laps()
    policies = _policies(tmp)
    facts = tmp.mktemp("facts")
    lab.close_shared(VM)
    lab.m7guard("lab", "reset", VM)
    lab = lab.sharing()  # the story's many short commands: one connection to each node
    mapr_layout(lab, VM)
    lab.ssh(VM, KERNEL_FIXTURE)
    boot_fresh = lab.ssh(VM, BOOT_ID).stdout.strip()
    expected = expected_sysctls("m7i.large", *node_size(lab, VM))
    keys = sorted(expected)
    lap("reset vm1, Data Fabric layout")
    with ThreadPoolExecutor(max_workers=2) as pool:
        fresh = pool.submit(audit, lab, tmp.mktemp("fresh-vm1"), VM, policies)
        collector = pool.submit(configure_collector, lab)
        fresh_results = fresh.result()
        collector.result()
    lap("fresh audit, collector")
    # os_baseline's kernel-module step in check mode does not change the fresh vm1. The role
    # differs between a VM and a container in that step alone (modules.yml: a container never
    # unloads the host's modules); the whole role, its --check --diff and its refused inputs
    # are tested on fresh container nodes (test_os_baseline.py, test_site.py).
    before = lab.ssh(VM, BASELINE_SNAPSHOT).stdout
    untouched: dict[str, Any] = {
        "check": lab.playbook(BASELINE, "--limit", VM, *VM_ONLY, "--check", "--diff",
                              check=False, timeout=1500),
    }
    untouched["unchanged"] = lab.ssh(VM, BASELINE_SNAPSHOT).stdout == before
    lap("os_baseline's modules step --check")

    tuned = play(lab, facts, "--limit", VM)
    running_converged = read_sysctls(lab, VM, keys)
    nvme_converged = lab.ssh(VM, NVME_READ).stdout
    lap("kernel_tuning")
    again = play(lab, facts, "--limit", VM)
    lap("kernel_tuning again")
    # the VM-only step for real, then once more
    baseline = tuple(lab.playbook(BASELINE, "--limit", VM, *VM_ONLY, timeout=1500).stdout
                     for _ in range(2))
    lap("os_baseline's modules step, twice")

    done = converge(lab, VM, tmp, lap)  # audit_logging twice, its audit, a forwarded record
    boot_converged = lab.ssh(VM, BOOT_ID).stdout.strip()
    pid = lab.ssh(VM, "sh -c 'echo $$; exec touch /etc/sudoers'").stdout.split()[0]
    record = wait_for(lab, VM, f"ausearch --input-logs -i -k sudoers -p {pid}", 30)
    forwarded = bool(wait_for(lab, COLLECTOR, f"grep -rE 'pid={pid} .*key=\"?sudoers' "
                                              "/var/log/remote", 30))
    collector_logs = lab.ssh(COLLECTOR, "cat /var/log/remote/*.log").stdout
    lap("forwarding and the sudoers record")

    lab.close_shared(VM)  # its connection ends with the reboot
    reboot = play(lab, facts, "--limit", VM, "--tags", "reboot",
                  "-e", "kernel_tuning_reboot_ok=true")
    boot_rebooted = lab.ssh(VM, BOOT_ID).stdout.strip()
    running_rebooted = read_sysctls(lab, VM, keys)
    nvme_rebooted = lab.ssh(VM, NVME_READ).stdout
    loaded = lab.ssh(VM, "auditctl -l").stdout
    status = lab.ssh(VM, "auditctl -s").stdout
    persisted = lab.ssh(VM, "cat /etc/audit/audit.rules").stdout
    lab.ssh(VM, "chronyc waitsync 60 0 0 1 >/dev/null", check=False, timeout=180)
    after = audit(lab, tmp.mktemp("rebooted-vm1"), VM, policies)
    lap("reboot and audit")
    story = Story(node=VM, fresh=fresh_results, later=after, collector_logs=collector_logs,
                  timings=lap.t, sudoers_record=record, sudoers_forwarded=forwarded,
                  loaded_after_reboot=loaded, status_after_reboot=status,
                  persisted_after_reboot=persisted, **done)
    tuning = Tuning(tuned, again, reboot, expected, running_converged, running_rebooted,
                    nvme_converged, nvme_rebooted, (boot_fresh, boot_converged, boot_rebooted))
    return Vm1(fresh_results, after, tuning, story, (baseline[0], baseline[1]), untouched,
               lap.t, policies)


@pytest.fixture(scope="module")
def vm1(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm1]:
    told = _story(lab, tmp_path_factory)
    print(f"\nvm1, seconds per step: {told.timings}, total {sum(told.timings.values()):.0f}")
    yield told
    lab.ssh(VM, "rm -rf /opt/mapr /var/lib/datafabric-standin", check=False)


def _values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# --- every check fails on the fresh vm1 and passes after the roles ------------------------


@pytest.mark.parametrize("rule", KERN_RULES + AUD_RULES)
def test_every_check_fails_on_a_fresh_vm(vm1: Vm1, rule: str) -> None:
    r = result(vm1.fresh, VM, rule)
    assert r["state"] == "fail", r


@pytest.mark.parametrize("rule", KERN_RULES)
def test_every_kernel_check_passes_after_the_play_and_the_reboot(vm1: Vm1, rule: str) -> None:
    r = result(vm1.after, VM, rule)
    assert r["state"] == "pass", r


@pytest.mark.parametrize("rule", AUD_RULES)
def test_every_audit_check_passes_after_the_play(vm1: Vm1, rule: str) -> None:
    r = result(vm1.audit_logging.converged, VM, rule)
    assert r["state"] == "pass", r


def test_os_baseline_kernel_modules_fail_on_the_fresh_vm(vm1: Vm1) -> None:
    """OSB-004 is judged on vm1 alone (a container's modules are the host's)."""
    r = result(vm1.fresh, VM, "OSB-004")
    assert r["state"] == "fail" and "dccp can be loaded" in r["message"], r


def test_os_baseline_kernel_modules_pass_after_the_step_and_the_reboot(vm1: Vm1) -> None:
    r = result(vm1.after, VM, "OSB-004")
    assert r["state"] == "pass", r


def test_os_baseline_check_mode_of_the_module_step_changes_nothing_on_the_fresh_vm(
        vm1: Vm1) -> None:
    check = vm1.baseline_untouched["check"]
    recap = play_recap(check.stdout)[VM]
    assert check.returncode == 0 and recap["failed"] == 0, check.stdout[-3000:]
    assert recap["changed"] > 0  # it reports what a real run would change
    assert "+install dccp /bin/false" in check.stdout, check.stdout[-3000:]  # the diff
    assert vm1.baseline_untouched["unchanged"]


def test_second_run_of_the_module_step_changes_nothing(vm1: Vm1) -> None:
    first, second = (play_recap(out)[VM] for out in vm1.baseline)
    assert first["changed"] > 0 and first["failed"] == 0, vm1.baseline[0][-3000:]
    assert second["changed"] == 0 and second["failed"] == 0, vm1.baseline[1][-3000:]
    assert "OSB-004 |" in vm1.baseline[1], vm1.baseline[1][-3000:]  # the step did run


@pytest.mark.parametrize("rule", KERNEL_RULES)
def test_kernel_audit_checks_pass_after_the_reboot(vm1: Vm1, rule: str) -> None:
    r = result(vm1.after, VM, rule)
    assert r["state"] == "pass", r


# --- kernel_tuning: run time, idempotence, the reboot with consent ------------------------


def test_converge_applies_the_global_sysctls(vm1: Vm1) -> None:
    t = vm1.tuning
    assert t.converge.changed(VM) > 0
    global_keys = [k for k in t.expected if not is_namespaced(k)]
    assert "vm.min_free_kbytes" in global_keys and "net.core.rmem_max" in global_keys
    for key, value in t.expected.items():
        assert t.running_converged[key] == value, key
    facts = t.converge.facts[VM]
    assert facts["kernel_tuning_not_applied"] == []
    assert facts["kernel_tuning_bootloader"] == "none"
    assert facts["m7i_profile_facts"]["instance_type"] == "m7i.large"
    assert facts["m7i_profile_facts"]["source"] == "inventory"


def test_converge_sets_the_nvme_queues(vm1: Vm1) -> None:
    values = _values(vm1.tuning.nvme_converged)
    assert "[none]" in values["scheduler"]
    assert values["nomerges"] == str(DEFAULTS["kernel_tuning_nvme_nomerges"])
    bound = min(DEFAULTS["kernel_tuning_nvme_nr_requests"], int(values["nr_tags"]))
    assert values["nr_requests"] == str(bound)
    assert values["read_ahead_kb"] == str(DEFAULTS["kernel_tuning_nvme_read_ahead_kb"])
    assert values["thp"].split()[-1] == "[never]"
    # nvme_core.io_timeout is writable at run time on this kernel: the role wrote it
    assert values["io_timeout"] == MAX_IO_TIMEOUT
    applied = vm1.tuning.converge.facts[VM]["kernel_tuning_applied"]
    assert applied["nvme_io_timeout_runtime"] == "written"


def test_a_reboot_is_required_and_not_done_without_consent(vm1: Vm1) -> None:
    t = vm1.tuning
    assert t.converge.facts[VM]["kernel_tuning_reboot_required"] is True
    assert "Reboot into the boot-time settings" in t.converge.out
    fresh, converged, rebooted = t.boot_ids
    # two kernel_tuning runs without kernel_tuning_reboot_ok and two audit_logging runs on a
    # node whose rules were not yet immutable: no reboot
    assert fresh and fresh == converged
    assert rebooted != converged


def test_second_kernel_tuning_run_changes_nothing(vm1: Vm1) -> None:
    t = vm1.tuning
    assert t.again.changed(VM) == 0, t.again.out[-4000:]
    assert t.again.recap[VM]["failed"] == 0
    assert t.again.facts[VM]["kernel_tuning_reboot_required"] is True  # still pending


def test_reboot_with_consent_keeps_everything(vm1: Vm1) -> None:
    t = vm1.tuning
    assert t.reboot.changed(VM) == 1, t.reboot.out[-4000:]
    assert re.search(r"TASK \[m7guard\.hardening\.kernel_tuning : Reboot into the boot-time "
                     r"settings\].*?\nchanged: \[vm1\]", t.reboot.out, re.DOTALL)
    assert t.reboot.facts[VM]["kernel_tuning_reboot_required"] is False
    for key, value in t.expected.items():
        assert t.running_rebooted[key] == value, key
    values = _values(t.nvme_rebooted)
    assert "[none]" in values["scheduler"]
    assert values["nomerges"] == "1"
    assert values["nr_requests"] == str(min(1024, int(values["nr_tags"])))
    assert values["read_ahead_kb"] == "128"
    assert values["thp"].split()[-1] == "[never]"
    assert values["io_timeout"] == MAX_IO_TIMEOUT  # from /etc/modprobe.d at module load


def test_evidence_of_the_size_derived_checks(vm1: Vm1) -> None:
    r = result(vm1.after, VM, "PERF-005")
    assert r["evidence"]["instance"]["type"] == "m7i.large"
    assert r["evidence"]["target"]["bandwidth_gbps"] == sizes.profile("m7i.large")[
        "network_baseline_gbps"]
    fresh = result(vm1.fresh, VM, "PERF-012")
    assert "not set in /opt/mapr/conf/env_override.sh" in fresh["message"]
    tuned = result(vm1.after, VM, "PERF-012")
    assert tuned["evidence"]["used_mib"] <= tuned["evidence"]["budget_mib"]


# --- audit_logging: rules in the kernel, an event with the key, kept over a reboot --------


def test_vm_reports_its_rules_loaded_and_immutable(vm1: Vm1) -> None:
    facts = vm1.audit_logging.facts
    assert facts["audit_logging_container"] is False
    assert facts["audit_logging_kernel_rules_loaded"] is True
    assert facts["audit_logging_immutable"] is True
    assert facts["audit_logging_reboot_required"] is False
    assert facts["audit_logging_kernel_rule_count"] == facts["audit_logging_persisted_rule_count"]
    assert "/usr/bin/sudo" in facts["audit_logging_privileged_programs"]


def test_touching_sudoers_leaves_a_record_with_the_rule_key(vm1: Vm1) -> None:
    record = vm1.audit_logging.sudoers_record
    assert 'key=sudoers' in record, record
    assert "name=/etc/sudoers" in record
    assert "exe=/usr/bin/touch" in record


def test_rules_are_loaded_again_after_a_reboot(vm1: Vm1) -> None:
    story = vm1.audit_logging
    loaded = story.loaded_after_reboot.splitlines()
    assert "-w /etc/sudoers -p wa -k sudoers" in loaded
    assert "-w /etc/shadow -p wa -k identity" in loaded
    assert any("-F path=/usr/bin/sudo" in line and "key=privileged" in line for line in loaded)
    assert any("-S init_module" in line and "key=modules" in line for line in loaded)
    persisted = [ln for ln in story.persisted_after_reboot.splitlines()
                 if ln.startswith(("-a ", "-w "))]
    assert len(loaded) == len(persisted)
    assert re.search(r"^enabled 2$", story.status_after_reboot, re.M), story.status_after_reboot


def test_forwarded_records_arrive_at_the_collector(vm1: Vm1) -> None:
    assert_forwarded(vm1.audit_logging)


def test_kernel_audit_records_are_forwarded_too(vm1: Vm1) -> None:
    assert vm1.audit_logging.sudoers_forwarded


def test_documented_audit_commands_are_issued_once(vm1: Vm1) -> None:
    assert_documented_commands_issued_once(vm1.audit_logging)


def test_second_audit_logging_run_changes_nothing(vm1: Vm1) -> None:
    assert_second_run_changes_nothing(vm1.audit_logging)


# --- the mutation battery -----------------------------------------------------------------
# Two runs: the AUD breaks compared over the AUD rules (profile audit), the KERN and PERF
# breaks over the KERN and PERF rules (profile tuning). One run over all three areas would
# take more audits of the AUD rules, whose AIDE check (AUD-008) hashes /etc and /usr under
# emulation; the container battery (test_site.py) compares every rule.


def _battery(lab: Any, out: Path, run: str, profile: str, *options: str,
             volatile: dict[tuple[str, str], str] | None = None) -> None:
    """The breaks of the lab run `run` (battery.LAB_RUNS) on the hardened vm1. vm1 audits
    slowly (software emulation), so a round breaks several rules at once (one break of each;
    share=True); each property still has its own round."""
    breaks = breaks_of(run)

    def cells(nodes, tag: str) -> Cells:
        found = audit_of(lab, out / tag, ",".join(nodes), *options, profile=profile)
        return {(r["host"], r["rule"]): (r["state"], r["message"]) for r in found.results}

    shared = lab.sharing()  # one connection for the breaks and restores
    report = battery_run(lambda node, cmd: shared.ssh(node, cmd, check=False), cells, breaks,
                         (VM,), share=True, volatile=volatile)
    print("\n" + report.summary())
    assert report.problems == [], "\n".join(report.problems)
    assert report.breaks == len(breaks) > 0


def test_mutation_battery_of_the_audit_rules(vm1: Vm1, lab: Any, tmp_path: Path) -> None:
    """Kernel auditing and auditd at boot: each AUD break turns its rule to fail and no AUD
    rule that was not broken moves. AUD-007 (chrony synchronised) is not compared on vm1:
    under software emulation the VM's clock runs unevenly and chrony may leave and regain
    synchronisation between two audits whatever a break does; AUD-007's breaks run on the
    container data nodes (tests/integration/test_site.py)."""
    _battery(lab, tmp_path, "vm1 audit", "audit",
             volatile={(VM, "AUD-007"): "chrony synchronisation of an emulated VM's clock is "
                                        "a live reading no break controls"})


def test_mutation_battery_of_the_kernel_rules(vm1: Vm1, lab: Any, tmp_path: Path) -> None:
    """The host kernel's keys, /sys, the emulated NVMe drive, irqbalance and the kernel
    modules: each KERN, PERF and OSB-004 break turns its rule to fail and no rule of the
    profile tuning, nor OSB-004, that was not broken moves. The other OSB breaks run on the
    container data nodes (tests/integration/test_site.py)."""
    _battery(lab, tmp_path, "vm1 kernel", KERNEL_PROFILE, "--policies", str(vm1.policies))
