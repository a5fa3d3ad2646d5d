"""kernel_tuning's derived profile for all eleven M7i sizes, and its other filters."""

from __future__ import annotations

import pytest
import yaml
from kernel_tuning_kit import DEFAULTS, ROOT, sizes, tuning

from m7guard.checks.support import sysctl as check_sysctl

ROLE = ROOT / "roles" / "kernel_tuning"
TYPES = sizes.known_types()
MIB = 1024 * 1024


def _derived(instance_type: str, memtotal_kib: int | None = None) -> dict:
    return tuning.derive(sizes.profile(instance_type), memtotal_kib,
                         DEFAULTS["kernel_tuning_network_rtt_ms"],
                         DEFAULTS["kernel_tuning_min_free_percent"])


@pytest.mark.parametrize("instance_type", TYPES)
def test_derived_profile_follows_the_size_table(instance_type: str) -> None:
    p = sizes.profile(instance_type)
    d = _derived(instance_type)
    memory_kib = p["memory_gib"] * MIB
    assert d["memory_kib"] == memory_kib
    # vm.min_free_kbytes: 1-3 % of the memory
    assert memory_kib // 100 <= d["min_free_kbytes"] <= memory_kib * 3 // 100
    # buffers: at least twice the bandwidth-delay product of the baseline, a power of two,
    # never below the kernel's defaults
    bdp = p["network_baseline_gbps"] * 1e9 / 8 * DEFAULTS["kernel_tuning_network_rtt_ms"] / 1000
    for key, floor in (("tcp_rmem_max", 6 * MIB), ("tcp_wmem_max", 4 * MIB)):
        assert d[key] >= max(2 * bdp, floor)
        assert d[key] == floor or d[key] & (d[key] - 1) == 0
    assert d["net_core_rmem_max"] == d["tcp_rmem_max"]
    assert d["tcp_rmem"] == f"4096 131072 {d['tcp_rmem_max']}"
    assert d["tcp_wmem"] == f"4096 16384 {d['tcp_wmem_max']}"
    assert d["netdev_max_backlog"] >= max(1000, 2500 * p["network_baseline_gbps"])
    assert d["somaxconn"] >= 4096
    # ENA Express prerequisites exactly on the sizes that have it; NUMA binding on 2 nodes
    assert d["ena_express"] is p["ena_express"]
    assert (d["tcp_limit_output_bytes"] == 1048576) is p["ena_express"]
    assert d["numa_bind"] is (p["numa_nodes"] > 1)


def test_buffers_and_backlog_grow_with_bandwidth() -> None:
    by_bandwidth = sorted(TYPES, key=lambda t: sizes.profile(t)["network_baseline_gbps"])
    for key in ("tcp_rmem_max", "tcp_wmem_max", "netdev_max_backlog", "min_free_kbytes"):
        values = [_derived(t)[key] for t in by_bandwidth]
        assert values == sorted(values), key
        assert values[-1] > values[0], key
    assert _derived("m7i.48xlarge")["tcp_rmem_max"] == 64 * MIB
    assert _derived("m7i.large")["netdev_max_backlog"] == 2000


@pytest.mark.parametrize("instance_type", TYPES)
def test_data_fabric_sizes_fit_the_node(instance_type: str) -> None:
    p = sizes.profile(instance_type)
    df = _derived(instance_type)["data_fabric"]
    memory = p["memory_mib"]
    heaps = (df["mapr_heap_max_mib"] + df["spark_driver_memory_mib"]
             + df["spark_executors"] * df["spark_executor_memory_mib"] * 1.1)
    assert heaps <= memory - df["os_reserve_mib"]
    assert df["os_reserve_mib"] >= memory // 10 or df["os_reserve_mib"] >= 2048
    assert df["spark_executors"] * df["spark_executor_cores"] < p["vcpus"] or p["vcpus"] <= 2
    assert 1 <= df["spark_executor_cores"] <= 5
    assert df["spark_executor_memory_mib"] <= memory // p["numa_nodes"]
    assert f"-Xmx{df['mapr_heap_max_mib']}m" in df["mapr_memory_opts"]
    assert ("-XX:+UseNUMA" in df["mapr_memory_opts"]) is (p["numa_nodes"] > 1)
    # the seed's fixed values (-Xmx64g, 48 GiB executors, 16 GiB driver) are not used
    assert df["mapr_heap_max_mib"] == memory // 4


def test_memory_follows_the_running_kernel_when_smaller() -> None:
    """A node with less memory than its size (the lab VM: m7i.large with 2 GiB)."""
    d = _derived("m7i.large", 2014108)
    assert d["memory_kib"] == 2014108
    assert 20141 <= d["min_free_kbytes"] <= 60423
    df = d["data_fabric"]
    used = (df["mapr_heap_max_mib"] + df["spark_driver_memory_mib"]
            + df["spark_executors"] * df["spark_executor_memory_mib"] * 1.1)
    assert used <= 2014108 / 1024 * 0.9
    assert _derived("m7i.large", 99 * MIB)["memory_kib"] == 8 * MIB  # never more than the size


@pytest.mark.parametrize(("rtt", "percent"), [(0, 2), (-1, 2), (4, 0.5), (4, 3.5)])
def test_bad_derivation_inputs_are_refused(rtt: float, percent: float) -> None:
    with pytest.raises(ValueError):
        tuning.derive(sizes.profile("m7i.large"), None, rtt, percent)


def test_settings_compose_hardening_vendor_derived_and_overrides() -> None:
    d = _derived("m7i.12xlarge")
    items = tuning.settings(d, DEFAULTS["kernel_tuning_hardening_sysctls"],
                            DEFAULTS["kernel_tuning_vendor_sysctls"],
                            {"vm.swappiness": 10, "kernel.pid_max": 4194304})
    by_key = {i["key"]: i for i in items}
    assert by_key["vm.swappiness"]["value"] == "10"
    assert by_key["vm.swappiness"]["rules"] == ["PERF-001 (override)"]
    assert by_key["kernel.pid_max"]["rules"] == ["override"]
    assert by_key["kernel.kptr_restrict"] == {"key": "kernel.kptr_restrict", "value": "2",
                                              "rules": ["KERN-001"]}
    assert by_key["net.ipv4.tcp_limit_output_bytes"]["value"] == "1048576"
    assert by_key["vm.min_free_kbytes"]["value"] == str(d["min_free_kbytes"])
    assert by_key["net.ipv4.ip_local_port_range"]["value"] == "32768 50027"
    without_v6 = tuning.settings(d, DEFAULTS["kernel_tuning_hardening_sysctls"], {}, {}, False)
    assert not [i for i in without_v6 if i["key"].startswith("net.ipv6.")]


def test_every_catalog_rule_of_the_role_is_served() -> None:
    """Every KERN/PERF sysctl rule's keys are among the role's settings, tagged by the rule."""
    items = tuning.settings(_derived("m7i.large"), DEFAULTS["kernel_tuning_hardening_sysctls"],
                            DEFAULTS["kernel_tuning_vendor_sysctls"], {})
    served = {i["key"]: i["rules"][0] for i in items}
    for path in sorted((ROOT / "policies" / "rules" / "kernel").glob("KERN-*.yml")):
        rule_id = path.stem
        assert rule_id in served.values(), rule_id
    kern_values = yaml.safe_load((ROOT / "policies/rules/kernel/KERN-001.yml").read_text())
    assert int(DEFAULTS["kernel_tuning_hardening_sysctls"]["kernel.kptr_restrict"]) in (
        kern_values["parameters"]["allowed"]["default"])


def test_role_defaults_agree_with_the_perf_rules() -> None:
    def param(rule: str, name: str) -> object:
        data = yaml.safe_load((ROOT / "policies/rules/performance" / f"{rule}.yml").read_text())
        return data["parameters"][name]["default"]

    vendor = DEFAULTS["kernel_tuning_vendor_sysctls"]
    assert vendor["vm.swappiness"] in param("PERF-001", "swappiness")
    assert vendor["vm.overcommit_memory"] in param("PERF-001", "overcommit_memory")
    assert vendor["net.ipv4.tcp_retries2"] in param("PERF-003", "tcp_retries2")
    assert vendor["net.ipv4.tcp_fin_timeout"] in param("PERF-003", "tcp_fin_timeout")
    assert int(vendor["net.ipv4.ip_local_port_range"].split()[1]) <= param("PERF-004",
                                                                           "highest_port")
    assert DEFAULTS["kernel_tuning_network_rtt_ms"] == param("PERF-005", "rtt_ms")
    assert DEFAULTS["kernel_tuning_thp"] == param("PERF-007", "value")
    assert DEFAULTS["kernel_tuning_mapr_user"] == param("PERF-008", "user")
    assert DEFAULTS["kernel_tuning_mapr_nofile"] >= param("PERF-008", "nofile")
    assert DEFAULTS["kernel_tuning_mapr_nproc"] >= param("PERF-008", "nproc")
    for name in ("scheduler", "nomerges", "nr_requests", "read_ahead_kb"):
        assert DEFAULTS[f"kernel_tuning_nvme_{name}"] == param("PERF-010", name), name
    assert DEFAULTS["kernel_tuning_nvme_io_timeout"] == param("PERF-011", "io_timeout")
    assert DEFAULTS["kernel_tuning_mapr_home"] == param("PERF-012", "mapr_home")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"vm.swappiness": -1}, "is negative"),
        ({"net.ipv4.ip_local_port_range": "1024 -5"}, "is negative"),
        ({"vm swappiness": 1}, "is not a sysctl name"),
        ({"swappiness": 1}, "is not a sysctl name"),
        ({"vm.swappiness": "1; reboot"}, "is not a number"),
        ({"vm.swappiness": None}, "is not a number or a word"),
        ({"vm.swappiness": True}, "is not a number or a word"),
        ({"vm.swappiness": [1]}, "is not a number or a word"),
        ("vm.swappiness=1", "must be a mapping"),
    ],
)
def test_invalid_sysctls_are_named(settings: object, problem: str) -> None:
    problems = tuning.invalid_sysctls(settings)
    assert problems and problem in problems[0]


def test_valid_sysctls_pass() -> None:
    assert tuning.invalid_sysctls({"vm.swappiness": 1, "net.core.default_qdisc": "fq",
                                   "net.ipv4.tcp_rmem": "4096 131072 6291456"}) == []
    assert tuning.invalid_sysctls(DEFAULTS["kernel_tuning_hardening_sysctls"]) == []
    assert tuning.invalid_sysctls(DEFAULTS["kernel_tuning_vendor_sysctls"]) == []


def test_container_split_agrees_with_the_checks() -> None:
    items = tuning.settings(_derived("m7i.48xlarge"), DEFAULTS["kernel_tuning_hardening_sysctls"],
                            DEFAULTS["kernel_tuning_vendor_sysctls"],
                            {"net.ipv4.tcp_mem": "1 2 3", "net.core.default_qdisc": "fq"})
    keys = [i["key"] for i in items]
    split = tuning.split_keys(keys, container=True)
    assert sorted(split["apply"] + split["persist_only"]) == sorted(keys)
    for key in keys:
        assert tuning.is_namespaced(key) is check_sysctl.is_namespaced(key), key
    assert "vm.swappiness" in split["persist_only"]
    assert "net.core.rmem_max" in split["persist_only"]
    assert "net.core.netdev_max_backlog" in split["persist_only"]
    assert "net.ipv4.tcp_mem" in split["persist_only"]
    assert "net.core.somaxconn" in split["apply"]
    assert "net.ipv4.tcp_rmem" in split["apply"]
    assert tuning.split_keys(keys, container=False) == {"apply": sorted(keys), "persist_only": []}


def test_select_by_tags() -> None:
    items = [{"path": "/a", "tags": ["PERF-007"]}, {"path": "/b", "tags": ["PERF-008"]},
             {"path": "/c", "tags": ["always"]}]
    assert [i["path"] for i in tuning.select_by_tags(items, ["all"], [])] == ["/a", "/b", "/c"]
    assert [i["path"] for i in tuning.select_by_tags(items, ["PERF-008"], [])] == ["/b", "/c"]
    assert [i["path"] for i in tuning.select_by_tags(items, ["all"], ["PERF-007"])] == ["/b", "/c"]
    assert "tags" not in tuning.select_by_tags(items, ["all"], [])[0]


def test_nvme_targets_are_bounded_by_the_hardware_queue() -> None:
    devices = [
        {"name": "nvme0n1", "scheduler": "none", "nomerges": "0", "nr_requests": "1023",
         "read_ahead_kb": "128", "nr_tags": "1023"},
        {"name": "nvme1n1", "scheduler": "mq-deadline", "nomerges": "1", "nr_requests": "64",
         "read_ahead_kb": "4096", "nr_tags": ""},
    ]
    targets = tuning.nvme_targets(devices, "none", 1, 1024, 128)
    assert [t["nr_requests"] for t in targets] == ["1023", "1024"]
    assert tuning.nvme_drift(devices, targets) == [
        "nvme0n1 nomerges 0 -> 1",
        "nvme1n1 scheduler mq-deadline -> none",
        "nvme1n1 nr_requests 64 -> 1024",
        "nvme1n1 read_ahead_kb 4096 -> 128",
    ]
    settled = [{**d, **t} for d, t in zip(devices, targets, strict=True)]
    assert tuning.nvme_drift(settled, targets) == []


def test_argument_specs_cover_the_defaults() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(DEFAULTS) == set(options)
    for name, value in DEFAULTS.items():
        assert options[name]["default"] == value, name
        assert options[name]["description"], name


def test_cpus_follow_the_running_kernel_when_fewer() -> None:
    """A container on a small host sees fewer CPUs than its size: executors fit those."""
    d = tuning.derive(sizes.profile("m7i.48xlarge"), 24 * MIB, 4, 2, 2)
    assert d["vcpus"] == 2 and d["somaxconn"] == 4096
    assert d["data_fabric"]["spark_executor_cores"] == 1
    assert tuning.derive(sizes.profile("m7i.large"), None, 4, 2, 64)["vcpus"] == 2
