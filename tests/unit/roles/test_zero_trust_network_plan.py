"""zero_trust_network's plan module: input refused with the variable named, plans computed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "zero_trust_network"
_spec = importlib.util.spec_from_file_location(
    "zero_trust_network_plan",
    ROLE.parents[1] / "plugins" / "modules" / "zero_trust_network_plan.py",
)
assert _spec and _spec.loader
plan_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plan_mod)
CATALOG = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__zero_trust_network_catalog"]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def params(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "zones": {
            "admin": ["10.232.3.0/24", "fd31:232:3::/64"],
            "cluster": ["10.232.1.0/24", "fd31:232:1::/64"],
            "clients": ["10.232.2.0/24", "fd31:232:2::/64"],
        },
        "required_zones": ["admin", "cluster", "clients"],
        "catalog": CATALOG,
        "group_services": DEFAULTS["zero_trust_network_group_services"],
        "services": [],
        "service_zones": {},
        "custom_services": {},
        "host_groups": ["m7_nodes", "cldb", "zookeeper", "fileserver"],
        "peer_addresses": {"zookeeper": [{"host": "zk2", "addresses": ["10.232.1.12",
                                                                     "fd31:232:1::c"]}]},
        "controller_address": "10.232.3.1",
        "egress_policy": "accept",
        "egress_zones": ["cluster", "admin"],
        "egress_lists": {"dns": [], "ntp": [], "kms": [], "mirrors": []},
        "mapr_present": False,
        "mfs_whitelist": True,
        "table": "m7guard",
        "log_prefix": "m7guard-drop ",
        "log_rate": "10/minute",
        "icmp_rate": "10/second",
        "confirm_timeout": 60,
    }
    base.update(over)
    return base


def refused(**over: Any) -> str:
    with pytest.raises(plan_mod.PlanError) as info:
        plan_mod.build_plan(params(**over))
    return str(info.value)


def test_plan_of_a_cldb_zookeeper_fileserver_node() -> None:
    plan = plan_mod.build_plan(params())
    assert plan["controller_allowed"] is True
    assert set(plan["services"]) == {"ssh", "cldb", "cldb_web", "cldb_jmx", "zookeeper",
                                     "zookeeper_quorum", "mfs", "nfs", "nfs_management"}
    assert plan["open_ports"]["admin"]["tcp"] == ["22", "7221"]
    assert plan["open_ports"]["clients"]["tcp"] == ["111", "2049", "5660", "5692", "5724",
                                                    "5756", "7222"]
    assert plan["open_ports"]["clients"]["udp"] == ["111", "2049"]
    assert plan["open_ports"]["peers:zookeeper"]["tcp"] == ["2888", "3888"]
    sets = {s["name"]: s["elements"] for s in plan["sets"]}
    assert sets["zone_admin_v6"] == ["fd31:232:3::/64"]
    assert sets["peers_zookeeper_v4"] == ["10.232.1.12/32"]
    rules = {(r["family"], r["set"], r["proto"]): r["ports"] for r in plan["rules"]}
    assert rules[("ip", "zone_admin_v4", "tcp")] == "{ 22, 7221 }"
    assert rules[("ip6", "peers_zookeeper_v6", "tcp")] == "{ 2888, 3888 }"
    assert "7220" not in str(plan["rules"])  # cldb_jmx: declared, reached only locally


def test_service_zones_and_custom_services() -> None:
    plan = plan_mod.build_plan(params(
        host_groups=["m7_nodes"], services=["mcs", "metrics"],
        service_zones={"mcs": ["clients", "admin"]},
        custom_services={"metrics": {"ports": ["9400-9402"], "protocol": "udp",
                                     "zones": ["cluster"]}},
    ))
    assert plan["open_ports"]["admin"]["tcp"] == ["22", "8443"]
    assert plan["open_ports"]["cluster"]["udp"] == ["9400-9402"]


def test_overlapping_networks_are_collapsed() -> None:
    zones = params()["zones"] | {"admin": ["10.0.0.0/8", "10.232.3.0/24", "10.0.2.2/32"]}
    plan = plan_mod.build_plan(params(zones=zones))
    assert {s["name"]: s["elements"] for s in plan["sets"]}["zone_admin_v4"] == ["10.0.0.0/8"]


def test_controller_outside_the_allow_list_is_reported() -> None:
    plan = plan_mod.build_plan(params(controller_address="192.0.2.7"))
    assert plan["controller_allowed"] is False
    assert plan_mod.build_plan(params(controller_address="::ffff:10.232.3.1"))[
        "controller_allowed"]
    assert plan_mod.build_plan(params(controller_address=""))["controller_allowed"] is False


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"zones": {"admin": ["10.0.0.300/24"], "cluster": [], "clients": []}},
         "zero_trust_network_zones.admin[0]: '10.0.0.300/24' is not a valid"),
        ({"zones": {"admin": ["10.0.0.1/24"], "cluster": [], "clients": []}},
         "zero_trust_network_zones.admin[0]: '10.0.0.1/24' has host bits set"),
        ({"zones": {"admin": [], "cluster": [], "clients": []}},
         "zero_trust_network_zones.admin is empty"),
        ({"zones": {"admin": ["0.0.0.0/0"], "cluster": [], "clients": []}},
         "would accept SSH from every address"),
        ({"zones": {"admin": ["10.0.0.0/8"], "cluster": []}},
         "zero_trust_network_zones: the zone 'clients' is missing"),
        ({"services": ["hdfs"]}, "zero_trust_network_services[0]: unknown service 'hdfs'"),
        ({"group_services": {"cldb": ["cldb", "cldbx"]}},
         "zero_trust_network_group_services.cldb[1]: unknown service 'cldbx'"),
        ({"custom_services": {"x": {"ports": [70000], "zones": ["cluster"]}}},
         "zero_trust_network_custom_services.x.ports[0]: port 70000 is out of range 1-65535"),
        ({"custom_services": {"x": {"ports": [0], "zones": ["cluster"]}}},
         "port 0 is out of range"),
        ({"custom_services": {"x": {"ports": ["9-2"], "zones": ["cluster"]}}},
         "range 9-2 runs backwards"),
        ({"custom_services": {"x": {"ports": [80], "zones": ["dmz"]}}},
         "zero_trust_network_custom_services.x.zones[0]: unknown zone 'dmz'"),
        ({"custom_services": {"cldb": {"ports": [80], "zones": ["cluster"]}}},
         "is a catalog service"),
        ({"service_zones": {"ssh": ["clients"]}}, "SSH is accepted only from the admin zone"),
        ({"service_zones": {"nope": ["clients"]}}, "unknown service 'nope'"),
        ({"log_prefix": 'bad"prefix'}, "zero_trust_network_log_prefix"),
        ({"log_rate": "lots"}, "zero_trust_network_log_rate"),
        ({"confirm_timeout": 3}, "zero_trust_network_confirm_timeout"),
        ({"egress_zones": ["dmz"]}, "zero_trust_network_egress_zones[0]: unknown zone 'dmz'"),
        ({"egress_lists": {"dns": ["not-a-net"]}}, "zero_trust_network_egress_dns[0]"),
        ({"controller_address": "nonsense"}, "controller_address"),
        ({"mapr_present": True, "zones": {"admin": ["10.0.0.0/8"], "cluster": [],
                                          "clients": []}},
         "mfs.subnets.whitelist would be empty"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(over: dict[str, Any], expected: str) -> None:
    assert expected in refused(**over)


def test_egress_plan() -> None:
    plan = plan_mod.build_plan(params(
        egress_policy="drop",
        egress_lists={"dns": ["10.232.3.1/32"], "ntp": [], "kms": ["fd31:232:3::1/128"],
                      "mirrors": []},
    ))
    egress = plan["egress"]
    assert egress["policy"] == "drop"
    assert {(r["set"], r["proto"], r["ports"]) for r in egress["rules"]} == {
        ("egress_dns_v4", "udp", "53"), ("egress_dns_v4", "tcp", "53"),
        ("egress_kms_v6", "tcp", "443"),
    }
    assert [r["set"] for r in egress["zone_rules"]] == [
        "zone_cluster_v4", "zone_cluster_v6", "zone_admin_v4", "zone_admin_v6"]


def test_rule_port_lists_cover_the_catalog() -> None:
    """Each catalog port is checked by the NET rule of its widest zone: admin-only ports by
    NET-002, cluster-only ones by NET-003, client-facing ones by NET-004."""
    rules = ROLE.parents[1] / "policies" / "rules" / "zero_trust_network"

    def ports(rule: str) -> set[int]:
        data = yaml.safe_load((rules / f"{rule}.yml").read_text())
        return set(data["parameters"]["ports"]["default"])

    admin, cluster, client = ports("NET-002"), ports("NET-003"), ports("NET-004")
    for name, spec in CATALOG.items():
        zones = set(spec.get("zones", []))
        if "clients" in zones:
            expected = client
        elif spec.get("peers") or zones == {"cluster"}:
            expected = cluster
        else:  # admin, or local only
            expected = admin
        assert set(spec["ports"]) <= expected, (name, spec["ports"])


def test_planned_services_are_the_plans_services() -> None:
    """The NET checks compute a host's services on the controller with planned_services;
    it must give what build_plan declares on the node, for every group combination."""
    for groups in ([], ["cldb"], ["cldb", "zookeeper", "fileserver"], ["nfs", "gateway"]):
        p = params(host_groups=groups)
        assert plan_mod.planned_services(p) == plan_mod.build_plan(p)["services"], groups
