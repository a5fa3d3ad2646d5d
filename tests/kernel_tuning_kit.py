"""Helpers of the m7i_profile and kernel_tuning tests: the roles' plugins, plays, audits and
node state."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from m7guard import m7i
from m7guard.results import Results

ROOT = Path(__file__).resolve().parents[1]
CONVERGE = "tests/fixtures/kernel_tuning/converge.yml"
REFUSED = "tests/fixtures/kernel_tuning/refused.yml"
DEFAULTS = yaml.safe_load((ROOT / "roles/kernel_tuning/defaults/main.yml").read_text())
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)
# What the plays may touch on a node: its state is compared before and after where nothing
# may change (check mode, refused input).
WATCHED_DIRS = ("/etc/sysctl.d", "/etc/udev/rules.d", "/etc/modprobe.d", "/etc/security/limits.d",
                "/etc/systemd/system", "/etc/default/grub.d", "/etc/ansible/facts.d",
                "/etc/m7guard", "/usr/local/sbin", "/opt/mapr/conf")


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file of the roles (a filter plugin, a module) as `name`, once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sizes = m7i
tuning = load_module("kernel_tuning_filters",
               ROOT / "plugins/filter/kernel_tuning.py")


def expected_sysctls(instance_type: str, memtotal_kib: int, vcpus: int) -> dict[str, str]:
    """The kernel parameters the role should set for this size on a node with this memory
    and these vCPUs (role defaults)."""
    derived = tuning.derive(sizes.profile(instance_type), memtotal_kib,
                            DEFAULTS["kernel_tuning_network_rtt_ms"],
                            DEFAULTS["kernel_tuning_min_free_percent"], vcpus)
    items = tuning.settings(derived, DEFAULTS["kernel_tuning_hardening_sysctls"],
                            DEFAULTS["kernel_tuning_vendor_sysctls"], {})
    return {i["key"]: i["value"] for i in items}


@dataclass
class Play:
    rc: int
    out: str
    recap: dict[str, dict[str, int]]
    facts: dict[str, dict[str, Any]]

    def changed(self, host: str) -> int:
        return self.recap[host]["changed"]


def play(lab: Any, facts_dir: Path, *args: str, check: bool = True,
         playbook: str = CONVERGE) -> Play:
    """Run a playbook; its facts dump (FACTS_DIR/<host>.json) is read into Play.facts."""
    facts_dir.mkdir(parents=True, exist_ok=True)
    for old in facts_dir.glob("*.json"):
        old.unlink()
    proc = lab.playbook(playbook, "-e", f"kernel_tuning_test_facts_dir={facts_dir}", *args,
                        check=False, timeout=1500)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-6000:]
    recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]),
                    "failed": int(m[4])} for m in RECAP.findall(proc.stdout)}
    facts = {p.name[: -len(".json")]: json.loads(p.read_text())
             for p in facts_dir.glob("*.json")}
    return Play(proc.returncode, out, recap, facts)


def audit(lab: Any, out: Path, limit: str) -> dict[tuple[str, str], dict[str, Any]]:
    proc = lab.m7guard("audit", "-i", str(lab.inventory), "--limit", limit, "--profile", "tuning",
                       "--out", str(out), "--format", "json", check=False)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    results = Results.load(out / "results.json").results
    return {(r["host"], r["rule"]): r for r in results}


def node_state(lab: Any, node: str, keys: list[str]) -> list[str]:
    """Hashes of every file in the watched directories, unit states, and the running values of
    `keys`, THP, io_timeout and the NVMe queues: what a play could change."""
    paths = " ".join(shlex.quote("/proc/sys/" + k.replace(".", "/")) for k in keys)
    script = (
        f"find {' '.join(WATCHED_DIRS)} -type f -o -type l 2>/dev/null | sort | "
        "while read -r f; do printf '%s %s\\n' \"$f\" \"$(sha256sum < \"$f\" 2>/dev/null)\"; done; "
        f"for p in {paths}; do printf '%s=%s\\n' \"$p\" \"$(cat \"$p\")\"; done; "
        "for u in m7guard-thp irqbalance numad; do printf '%s: %s %s\\n' $u "
        "\"$(systemctl is-enabled $u 2>/dev/null)\" \"$(systemctl is-active $u 2>/dev/null)\"; "
        "done; cat /sys/kernel/mm/transparent_hugepage/enabled "
        "/sys/module/nvme_core/parameters/io_timeout "
        "/sys/block/nvme*/queue/scheduler /sys/block/nvme*/queue/nomerges "
        "/sys/block/nvme*/queue/nr_requests /sys/block/nvme*/queue/read_ahead_kb 2>/dev/null; "
        "dpkg-query -W -f='${Package} ${Status}\\n' irqbalance 2>/dev/null; true"
    )
    return lab.ssh(node, script).stdout.splitlines()


def read_sysctls(lab: Any, node: str, keys: list[str]) -> dict[str, str]:
    script = "; ".join(
        f"printf '%s=%s\\n' {k} \"$(cat /proc/sys/{k.replace('.', '/')})\"" for k in keys)
    out = lab.ssh(node, script).stdout
    return {k: " ".join(v.split()) for k, _, v in (line.partition("=") for line in
                                                   out.splitlines())}


def node_size(lab: Any, node: str) -> tuple[int, int]:
    """(MemTotal in KiB, online vCPUs) as the node's kernel sees them."""
    out = lab.ssh(node, "grep ^MemTotal: /proc/meminfo; getconf _NPROCESSORS_ONLN").stdout.split()
    return int(out[1]), int(out[3])
