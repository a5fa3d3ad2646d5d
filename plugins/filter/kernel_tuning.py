"""Tuning values kernel_tuning derives from an m7i_profile profile, and which kernel keys a
container node may set.

Pure Python (no Ansible import at module level), so unit tests import it directly.

Network buffers follow the bandwidth-delay product of the size's *baseline* bandwidth (the
burst of the small sizes is credit-based and short): the largest TCP buffer is twice the
product (the kernel keeps about half of a socket buffer for overhead), rounded up to a power
of two, never below the kernel's own defaults and never above 256 MiB. `vm.min_free_kbytes`
is a share (1-3 %) of the memory the node really has (the smaller of the table's and the
running kernel's). The JVM and Spark sizes replace the seed's fixed values (written for one
size) with shares of the node's memory and cores.
"""

from __future__ import annotations

import math
import re
from typing import Any

KIB_PER_MIB = 1024
TCP_RMEM_DEFAULT_MAX = 6291456  # the kernel's own tcp_rmem maximum (6 MiB)
TCP_WMEM_DEFAULT_MAX = 4194304  # the kernel's own tcp_wmem maximum (4 MiB)
BUFFER_CEILING = 268435456  # 256 MiB: beyond any M7i size's product at sane RTTs
BACKLOG_FLOOR = 1000  # the kernel default of net.core.netdev_max_backlog
BACKLOG_PER_GBPS = 2500
SOMAXCONN_FLOOR = 4096
ENA_EXPRESS_LIMIT_OUTPUT = 1048576  # ENA Express needs tcp_limit_output_bytes >= 1 MiB
ENA_EXPRESS_MAX_MTU = 8900
MIN_FREE_RANGE = (1.0, 3.0)  # percent of memory
JVM_OVERHEAD = 1.10  # Spark adds max(384 MiB, 10 %) of executor memory off the heap
MAX_EXECUTOR_CORES = 5
MIN_EXECUTOR_MIB = 256

# Keys that belong to a network namespace: a container node has its own value. Everything
# else (kernel.*, vm.*, fs.*, the global net.core.* keys) is the host kernel's. Mirrors
# m7guard/checks/support/sysctl.py, which the checks use for the same decision.
NAMESPACED_PREFIXES = ("net.ipv4.", "net.ipv6.", "net.netfilter.", "net.unix.")
NAMESPACED_KEYS = frozenset({"net.core.somaxconn", "net.core.xfrm_acq_expires"})
GLOBAL_EXCEPTIONS = frozenset({"net.ipv4.tcp_mem", "net.ipv4.udp_mem", "net.ipv4.ipfrag_secret"})


def is_namespaced(key: str) -> bool:
    """Whether a sysctl key is per network namespace (settable inside a container)."""
    key = str(key).strip()
    if key in GLOBAL_EXCEPTIONS:
        return False
    return key in NAMESPACED_KEYS or key.startswith(NAMESPACED_PREFIXES)


def split_keys(keys: Any, container: bool) -> dict[str, list[str]]:
    """Which keys a node may set at run time (`apply`) and which it only persists
    (`persist_only`: the host kernel's keys on a container node)."""
    keys = sorted(str(k) for k in keys)
    if not container:
        return {"apply": keys, "persist_only": []}
    return {
        "apply": [k for k in keys if is_namespaced(k)],
        "persist_only": [k for k in keys if not is_namespaced(k)],
    }


def next_pow2(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, n))))


def bdp_bytes(gbps: float, rtt_ms: float) -> int:
    """Bandwidth-delay product in bytes of `gbps` over a round trip of `rtt_ms`."""
    return int(gbps * 1e9 / 8 * rtt_ms / 1000)


def network_buffers(gbps: float, rtt_ms: float) -> dict[str, int]:
    buffer = min(BUFFER_CEILING, next_pow2(2 * bdp_bytes(gbps, rtt_ms)))
    rmem = max(buffer, TCP_RMEM_DEFAULT_MAX)
    wmem = max(buffer, TCP_WMEM_DEFAULT_MAX)
    return {"bdp_bytes": bdp_bytes(gbps, rtt_ms), "tcp_rmem_max": rmem, "tcp_wmem_max": wmem}


def netdev_backlog(gbps: float) -> int:
    return max(BACKLOG_FLOOR, math.ceil(gbps * BACKLOG_PER_GBPS / 1000) * 1000)


def somaxconn(vcpus: int) -> int:
    return min(65535, max(SOMAXCONN_FLOOR, 256 * vcpus))


def effective_memory_kib(profile: dict[str, Any], memtotal_kib: Any = None) -> int:
    """The node's memory: the table's, or less when the running kernel has less (a test VM,
    a host with memory reserved for a crash kernel)."""
    table = int(profile["memory_mib"]) * KIB_PER_MIB
    try:
        seen = int(memtotal_kib) if memtotal_kib not in (None, "") else 0
    except (TypeError, ValueError):
        seen = 0
    return min(table, seen) if seen > 0 else table


def min_free_kbytes(memory_kib: int, percent: float) -> int:
    low, high = MIN_FREE_RANGE
    if not low <= percent <= high:
        raise ValueError(f"min_free percent must be within {low}-{high}, got {percent}")
    return int(memory_kib * percent / 100)


def data_fabric_memory(profile: dict[str, Any], memory_mib: int) -> dict[str, Any]:
    """JVM heap of the Data Fabric services and Spark executor sizes for this node.

    The OS keeps 10 % of memory (at least 2 GiB, but never more than a quarter); the MapR
    JVMs get a quarter (-Xms half of -Xmx); the Spark driver an eighth (at most 16 GiB); the
    rest goes to executors of up to five cores each (one core in eight stays with the OS and
    MapR), each executor's heap plus Spark's 10 % overhead fitting its share. On a multi-NUMA
    size an executor never spans more memory than one NUMA node has. Everything together
    fits in the node's memory minus the OS share.
    """
    vcpus = int(profile["vcpus"])
    numa = max(1, int(profile.get("numa_nodes", 1)))
    reserve = min(max(2048, memory_mib // 10), memory_mib // 4)
    mapr_xmx = max(256, memory_mib // 4)
    driver = min(16384, max(256, memory_mib // 8))
    free_cores = max(1, vcpus - max(1, vcpus // 8))
    executor_cores = max(1, min(MAX_EXECUTOR_CORES, vcpus // 4))
    spark_pool = max(0, memory_mib - reserve - mapr_xmx - driver)
    smallest = int(MIN_EXECUTOR_MIB * JVM_OVERHEAD)
    executors = max(1, min(free_cores // executor_cores, spark_pool // smallest))
    per_executor = min(spark_pool // executors, memory_mib // numa)
    executor_memory = max(MIN_EXECUTOR_MIB, int(per_executor / JVM_OVERHEAD))
    return {
        "os_reserve_mib": reserve,
        "mapr_heap_max_mib": mapr_xmx,
        "mapr_heap_min_mib": mapr_xmx // 2,
        "mapr_memory_opts": (
            f"-Xmx{mapr_xmx}m -Xms{mapr_xmx // 2}m -XX:+UseG1GC -XX:MaxGCPauseMillis=200"
            + (" -XX:+UseNUMA" if numa > 1 else "")
        ),
        "spark_driver_memory": f"{driver}m",
        "spark_driver_memory_mib": driver,
        "spark_executor_memory": f"{executor_memory}m",
        "spark_executor_memory_mib": executor_memory,
        "spark_executor_cores": executor_cores,
        "spark_executors": executors,
    }


def effective_vcpus(profile: dict[str, Any], online: Any = None) -> int:
    """The node's vCPUs: the table's, or fewer when the running kernel sees fewer."""
    table = int(profile["vcpus"])
    try:
        seen = int(online) if online not in (None, "") else 0
    except (TypeError, ValueError):
        seen = 0
    return min(table, seen) if seen > 0 else table


def derive(
    profile: dict[str, Any],
    memtotal_kib: Any = None,
    rtt_ms: float = 4.0,
    min_free_percent: float = 2.0,
    vcpus_online: Any = None,
) -> dict[str, Any]:
    """Every size-derived value of kernel_tuning for one node. Memory and vCPUs are the
    size's, or what the running kernel has when that is less (a test VM, a container)."""
    if float(rtt_ms) <= 0:
        raise ValueError(f"rtt_ms must be positive, got {rtt_ms}")
    gbps = float(profile["network_baseline_gbps"])
    memory_kib = effective_memory_kib(profile, memtotal_kib)
    vcpus = effective_vcpus(profile, vcpus_online)
    buffers = network_buffers(gbps, float(rtt_ms))
    out: dict[str, Any] = {
        "memory_kib": memory_kib,
        "vcpus": vcpus,
        "rtt_ms": float(rtt_ms),
        "bandwidth_gbps": gbps,
        **buffers,
        "net_core_rmem_max": buffers["tcp_rmem_max"],
        "net_core_wmem_max": buffers["tcp_wmem_max"],
        "tcp_rmem": f"4096 131072 {buffers['tcp_rmem_max']}",
        "tcp_wmem": f"4096 16384 {buffers['tcp_wmem_max']}",
        "netdev_max_backlog": netdev_backlog(gbps),
        "somaxconn": somaxconn(vcpus),
        "min_free_kbytes": min_free_kbytes(memory_kib, float(min_free_percent)),
        "ena_express": bool(profile.get("ena_express")),
        "tcp_limit_output_bytes": ENA_EXPRESS_LIMIT_OUTPUT if profile.get("ena_express") else None,
        "ena_express_max_mtu": ENA_EXPRESS_MAX_MTU,
        "numa_nodes": int(profile.get("numa_nodes", 1)),
        "numa_bind": int(profile.get("numa_nodes", 1)) > 1,
    }
    out["data_fabric"] = data_fabric_memory({**profile, "vcpus": vcpus},
                                            memory_kib // KIB_PER_MIB)
    return out


# The rule each built-in key serves; the sysctl.d file groups keys under these ids and the
# tasks that set them carry them as tags.
RULES: dict[str, str] = {
    "kernel.kptr_restrict": "KERN-001",
    "kernel.dmesg_restrict": "KERN-002",
    "kernel.randomize_va_space": "KERN-003",
    "fs.suid_dumpable": "KERN-004",
    "kernel.yama.ptrace_scope": "KERN-005",
    "kernel.unprivileged_bpf_disabled": "KERN-006",
    "fs.protected_hardlinks": "KERN-007",
    "fs.protected_symlinks": "KERN-007",
    "net.ipv4.ip_forward": "KERN-008",
    "net.ipv4.conf.all.rp_filter": "KERN-009",
    "net.ipv4.conf.default.rp_filter": "KERN-009",
    "net.ipv4.conf.all.accept_redirects": "KERN-010",
    "net.ipv4.conf.default.accept_redirects": "KERN-010",
    "net.ipv6.conf.all.accept_redirects": "KERN-011",
    "net.ipv6.conf.default.accept_redirects": "KERN-011",
    "net.ipv4.conf.all.send_redirects": "KERN-012",
    "net.ipv4.conf.default.send_redirects": "KERN-012",
    "net.ipv4.conf.all.accept_source_route": "KERN-013",
    "net.ipv4.conf.default.accept_source_route": "KERN-013",
    "net.ipv4.conf.all.log_martians": "KERN-014",
    "net.ipv4.conf.default.log_martians": "KERN-014",
    "net.ipv4.tcp_syncookies": "KERN-015",
    "net.ipv4.icmp_echo_ignore_broadcasts": "KERN-016",
    "vm.swappiness": "PERF-001",
    "vm.overcommit_memory": "PERF-001",
    "vm.min_free_kbytes": "PERF-002",
    "net.ipv4.tcp_retries2": "PERF-003",
    "net.ipv4.tcp_fin_timeout": "PERF-003",
    "net.ipv4.ip_local_port_range": "PERF-004",
    "net.core.rmem_max": "PERF-005",
    "net.core.wmem_max": "PERF-005",
    "net.ipv4.tcp_rmem": "PERF-005",
    "net.ipv4.tcp_wmem": "PERF-005",
    "net.core.netdev_max_backlog": "PERF-006",
    "net.core.somaxconn": "tuning",
    "net.ipv4.tcp_limit_output_bytes": "ENA Express",
}
_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_VALUE_RE = re.compile(r"^([0-9]+( [0-9]+)*|[A-Za-z_][A-Za-z0-9_.:-]*)$")


def derived_sysctls(derived: dict[str, Any]) -> dict[str, Any]:
    """The kernel keys whose values come from the size."""
    out = {
        "vm.min_free_kbytes": derived["min_free_kbytes"],
        "net.core.rmem_max": derived["net_core_rmem_max"],
        "net.core.wmem_max": derived["net_core_wmem_max"],
        "net.ipv4.tcp_rmem": derived["tcp_rmem"],
        "net.ipv4.tcp_wmem": derived["tcp_wmem"],
        "net.core.netdev_max_backlog": derived["netdev_max_backlog"],
        "net.core.somaxconn": derived["somaxconn"],
    }
    if derived.get("tcp_limit_output_bytes"):
        out["net.ipv4.tcp_limit_output_bytes"] = derived["tcp_limit_output_bytes"]
    return out


def invalid_sysctls(settings: Any) -> list[str]:
    """Problems of a {key: value} mapping of sysctls given by the operator: a key that is not a
    dotted sysctl name, a negative number, anything but numbers or one word."""
    if not isinstance(settings, dict):
        return [f"must be a mapping of sysctl names to values, not {type(settings).__name__}"]
    problems = []
    for key, value in settings.items():
        if not _KEY_RE.match(str(key)):
            problems.append(f"{key!r} is not a sysctl name (dotted, e.g. vm.swappiness)")
        text = " ".join(str(value).split()) if not isinstance(value, bool) else ""
        if isinstance(value, (dict, list, bool)) or value is None:
            problems.append(f"{key}: {value!r} is not a number or a word")
        elif text.startswith("-") or " -" in text:
            problems.append(f"{key}: {value!r} is negative")
        elif not _VALUE_RE.match(text):
            problems.append(f"{key}: {value!r} is not a number, numbers or a word")
    return problems


def settings(
    derived: dict[str, Any],
    hardening: dict[str, Any],
    vendor: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    ipv6: bool = True,
) -> list[dict[str, Any]]:
    """Every sysctl the role persists, as [{key, value, rules}] sorted by rule then key.

    Hardening, vendor and size-derived values in that order; the operator's overrides win.
    Without IPv6 the role's own net.ipv6.* keys are left out (an override is kept, so that a
    missing key is reported rather than ignored).
    """
    merged: dict[str, tuple[str, str]] = {}
    for source in (hardening, vendor, derived_sysctls(derived)):
        for key, value in source.items():
            if not ipv6 and str(key).startswith("net.ipv6."):
                continue
            merged[str(key)] = (" ".join(str(value).split()), RULES.get(str(key), "tuning"))
    for key, value in (overrides or {}).items():
        rule = RULES.get(str(key))
        merged[str(key)] = (" ".join(str(value).split()), f"{rule} (override)" if rule
                            else "override")
    items = [{"key": k, "value": v, "rules": [r]} for k, (v, r) in merged.items()]
    return sorted(items, key=lambda i: (i["rules"][0], i["key"]))


NVME_ATTRS = ("scheduler", "nomerges", "nr_requests", "read_ahead_kb")


def nvme_targets(
    devices: Any, scheduler: str, nomerges: Any, nr_requests: Any, read_ahead_kb: Any
) -> list[dict[str, str]]:
    """The queue values each present NVMe device should have; nr_requests is bounded by the
    device's hardware tag count (the kernel refuses more without an I/O scheduler)."""
    out = []
    for dev in devices or []:
        tags = str(dev.get("nr_tags", ""))
        want = int(nr_requests)
        bound = min(want, int(tags)) if tags.isdigit() and int(tags) > 0 else want
        out.append({
            "name": dev["name"],
            "scheduler": str(scheduler),
            "nomerges": str(nomerges),
            "nr_requests": str(bound),
            "read_ahead_kb": str(read_ahead_kb),
        })
    return out


def nvme_drift(devices: Any, targets: Any) -> list[str]:
    """`DEVICE ATTRIBUTE current -> wanted` for every queue value that differs."""
    wanted = {t["name"]: t for t in targets or []}
    out = []
    for dev in devices or []:
        target = wanted.get(dev["name"])
        if target is None:
            continue
        for attr in NVME_ATTRS:
            if str(dev.get(attr, "")) != target[attr]:
                out.append(f"{dev['name']} {attr} {dev.get(attr, '')} -> {target[attr]}")
    return out


def select_by_tags(items: Any, run_tags: Any, skip_tags: Any = ()) -> list[dict[str, Any]]:
    """The items whose `tags` this run selects (as Ansible selects tasks), without `tags`.

    One task writes many files; filtering its items by the run's tags keeps `--tags ID`
    from touching files of other rules. Items tagged `always` are kept unless skipped.
    """
    run = set(run_tags or ["all"])
    skip = set(skip_tags or [])
    out = []
    for item in items or []:
        tags = set(item.get("tags") or [])
        wanted = "all" in run or "always" in tags or bool(tags & run)
        if "tagged" in run and tags:
            wanted = True
        if tags & skip or ("always" in skip and "always" in tags):
            wanted = False
        if wanted:
            out.append({k: v for k, v in item.items() if k != "tags"})
    return out


def _filter_derive(profile: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return derive(profile, *args, **kwargs)
    except (KeyError, ValueError, TypeError) as exc:
        from ansible.errors import AnsibleFilterError

        raise AnsibleFilterError(f"kernel_tuning: cannot derive the tuning: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kernel_tuning_derive": _filter_derive,
            "kernel_tuning_split_keys": split_keys,
            "kernel_tuning_is_namespaced": is_namespaced,
            "kernel_tuning_settings": settings,
            "kernel_tuning_nvme_targets": nvme_targets,
            "kernel_tuning_select_by_tags": select_by_tags,
            "kernel_tuning_nvme_drift": nvme_drift,
            "kernel_tuning_invalid_sysctls": invalid_sysctls,
        }
