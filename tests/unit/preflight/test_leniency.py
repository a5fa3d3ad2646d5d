"""Preflight never reads missing or unreadable input as a pass (issue 13, class 5): AWS
checks without --aws are counted as not assessed, PRE-002 with no playbook fails, PRE-005
treats any overly broad public range as the world and a zone that is not a list as an error."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from typing import Any

import pytest
from unit.preflight.test_preflight import EXAMPLE, ROOT, edit, preflight

from m7guard.preflight import checks as pre
from m7guard.preflight.intended import HostIntent
from m7guard.preflight.publicnet import public_addresses, world_open
from m7guard.results import Results

AWS_RULES = {"PRE-011", "PRE-012", "PRE-013", "PRE-014", "PRE-015"}


def test_aws_checks_without_aws_are_not_assessed_and_counted(tmp_path: Path) -> None:
    code, output, data = preflight(EXAMPLE, tmp_path / "out", "--profile", "pci_dss",
                                   "--format", "json,html,junit")
    aws = [r for r in data["results"] if r["rule"] in AWS_RULES]
    assert {r["rule"] for r in aws} == AWS_RULES
    assert {r["state"] for r in aws} == {"notchecked"}
    assert all(r["message"].startswith("not assessed") for r in aws)
    results = Results.validated(data)
    n = results.counts()["notchecked"]
    assert n == len(aws) > 0
    assert "not assessed" in output  # the summary table's column
    assert any(f"{n} results of AWS checks not assessed" in w for w in data["warnings"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"<b class=\"s-notchecked\">{n}</b>not assessed" in html
    skipped = n + sum(r["state"] in ("notapplicable", "waived") for r in data["results"])
    assert f'skipped="{skipped}"' in (tmp_path / "out" / "junit.xml").read_text()
    # PRE-014's requirements (PCI 1.3.1, ...) cannot read as satisfied when it was not run
    pci = {s.id: s for s in results.requirement_statuses("pci_dss_4")}
    assert pci["1.3.1"].status == "not-assessed"
    assert code == 0, output  # not assessed is said, not gated: the rest passed


def test_pre_002_with_no_playbook_fails(tmp_path: Path) -> None:
    ctx = pre.Context(root=tmp_path, playbooks=[], roles_dir=tmp_path / "roles", params={})
    outcome = pre.pre_002(ctx)
    assert outcome.state == "fail", outcome
    assert "no playbook" in outcome.message


def _host(**variables: Any) -> HostIntent:
    return HostIntent(name="dn1", groups=["m7_nodes"], roles=["zero_trust_network"],
                      variables=variables)


def _ctx(**params: Any) -> pre.Context:
    return pre.Context(root=ROOT, playbooks=[], roles_dir=ROOT / "roles",
                       params={"PRE-005": params} if params else {})


OK_ZONES = {"admin": ["10.20.0.0/24"], "cluster": ["10.20.1.0/24"], "clients": ["10.20.2.0/24"]}


@pytest.mark.parametrize("cidr", [
    "0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "64.0.0.0/2", "8.0.0.0/8", "1.0.0.0/15",
    "::/0", "::/1", "2000::/3", "2600::/16", "::ffff:0:0/96", "::ffff:0.0.0.0/97",
])
def test_pre_005_treats_a_broad_public_range_as_the_world(cidr: str) -> None:
    outcome = pre.pre_005(_ctx(), _host(zero_trust_network_zones=OK_ZONES | {"cluster": [cidr]}))
    assert outcome.state == "fail", outcome
    assert "zero_trust_network_zones.cluster" in outcome.message and cidr in outcome.message


@pytest.mark.parametrize("cidr", [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "203.0.113.0/24",
    "198.51.100.7/32", "8.8.0.0/16", "fd00::/8", "fe80::/10", "2001:db8::/32", "2600:1f18::/32",
])
def test_pre_005_passes_private_and_narrow_public_ranges(cidr: str) -> None:
    outcome = pre.pre_005(_ctx(), _host(zero_trust_network_zones=OK_ZONES | {"cluster": [cidr]}))
    assert outcome.state == "pass", outcome


def test_pre_005_minimum_prefix_is_a_catalog_parameter() -> None:
    host = _host(zero_trust_network_zones=OK_ZONES | {"admin": ["8.8.0.0/16"]})
    assert pre.pre_005(_ctx(public_prefix_min_ipv4=24), host).state == "fail"
    assert pre.pre_005(_ctx(public_prefix_min_ipv4=16), host).state == "pass"


def test_public_address_count() -> None:
    net = ipaddress.ip_network
    assert public_addresses(net("10.0.0.0/8")) == 0
    assert public_addresses(net("8.8.8.0/24")) == 256
    # 0.0.0.0/1 less 0/8, 10/8, 100.64/10 and 127/8
    assert public_addresses(net("0.0.0.0/1")) == 2**31 - 3 * 2**24 - 2**22
    assert world_open(net("0.0.0.0/1")) and not world_open(net("10.0.0.0/8"))


@pytest.mark.parametrize(("zones", "variable"), [
    (OK_ZONES | {"cluster": "0.0.0.0/0"}, "zero_trust_network_zones.cluster"),
    (OK_ZONES | {"admin": {"net": "10.0.0.0/8"}}, "zero_trust_network_zones.admin"),
    (OK_ZONES | {"clients": "10.20.2.0/24"}, "zero_trust_network_zones.clients"),
    (OK_ZONES | {"cluster": ["10.20.1.0/24", "everything"]}, "zero_trust_network_zones.cluster"),
])
def test_pre_005_zone_that_is_not_a_list_of_networks_is_an_error(
    zones: dict[str, Any], variable: str
) -> None:
    outcome = pre.pre_005(_ctx(), _host(zero_trust_network_zones=zones))
    assert outcome.state == "error", outcome
    assert variable in outcome.message


def test_pre_005_service_zones_not_a_list_is_an_error() -> None:
    outcome = pre.pre_005(_ctx(), _host(zero_trust_network_zones=OK_ZONES,
                                        zero_trust_network_service_zones={"ssh": "admin"}))
    assert outcome.state == "error" and "zero_trust_network_service_zones.ssh" in outcome.message


def test_pre_005_string_zone_fails_preflight_naming_the_variable(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, inventory)
    edit(inventory / "group_vars/all/network.yml",
         lambda d: d.update(example_cluster_networks="0.0.0.0/0"))
    code, output, data = preflight(inventory, tmp_path / "out", "--profile", "pci_dss")
    pre5 = [r for r in data["results"] if r["rule"] == "PRE-005" and r["host"] == "dn1"]
    assert pre5 and pre5[0]["state"] == "error", pre5
    assert "zero_trust_network_zones.cluster" in pre5[0]["message"]
    assert code == 2, output
