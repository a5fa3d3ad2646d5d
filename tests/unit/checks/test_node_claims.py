"""Class 4 of issue 13, the checks' part: whether a node is a container comes from the
inventory on the controller; the node's own markers are evidence, not an authority."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from m7guard.checks.support.plugin import AuditContext


@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str = ""


class _Backend:
    NAME = "ansible"

    def __init__(self, variables: dict[str, Any]) -> None:
        self.host = "node1"
        self.variables = variables

    def get_variables(self) -> dict[str, Any]:
        return self.variables


class _Node:
    """An inventory host whose node carries a container marker (/.dockerenv)."""

    def __init__(self, variables: dict[str, Any], marker_file: bool = True) -> None:
        self.backend = _Backend(variables)
        self.marker_file = marker_file

    def run(self, command: str, *args: Any) -> _Out:
        m = re.search(r"echo '(@@m7g-[0-9a-f]+) virt'", args[0] if args else command).group(1)
        env = "/.dockerenv\n" if self.marker_file else ""
        return _Out(0, f"{m} virt\nnone\n{m} containerenv\n{env}{m} pid1\n{m} ipv6\nyes\n"
                       f"{m} mapr\n{m} systemd\nyes\n{m} hostname\nnode1\n{m} waivers\n"
                       f"{m} end\n")


class _Config:
    def getoption(self, name: str) -> Any:
        return {"m7guard_workers": 1, "m7guard_fork": False, "m7guard_profile": "baseline"}.get(
            name)


def _facts(variables: dict[str, Any], marker_file: bool = True):
    ctx = AuditContext(_Config())  # type: ignore[arg-type]
    return ctx._gather(_Node({"group_names": ["m7_nodes"], **variables}, marker_file), ()).facts


def test_a_marker_file_does_not_make_an_inventory_vm_a_container() -> None:
    facts = _facts({"m7guard_lab_kind": "vm"})
    assert facts.condition("not_container") is True
    assert facts.container is None
    assert "/.dockerenv exists" in facts.container_claim_ignored


def test_an_inventory_node_without_a_declared_kind_has_its_own_kernel() -> None:
    facts = _facts({})
    assert facts.condition("not_container") is True
    assert "/.dockerenv" in facts.container_claim_ignored


def test_the_inventory_declares_containers() -> None:
    assert _facts({"m7guard_node_kind": "container"}, marker_file=False).container == "container"
    assert _facts({"m7guard_lab_kind": "container"}).container == "docker"
    assert _facts({"m7guard_node_kind": "container"}).condition("not_container") is False


def test_aud_005_a_node_claiming_to_be_a_container_does_not_excuse_a_tmpfs_journal(
        expect, fake_host) -> None:
    from m7guard.checks import audit_logging
    from m7guard.checks.support.snapshot import HostFacts, HostSnapshot

    host = fake_host({
        "cat-config": "[Journal]\nStorage=persistent\nSystemMaxUse=1G\nSystemKeepFree=2G\n"
                      "SystemMaxFileSize=128M\nMaxRetentionSec=1year\n",
        "system.journal": "/var/log/journal/abc/system.journal\n",
        "findmnt": "tmpfs\n",
        "systemd-detect-virt": "docker\n",
    })
    own_kernel = HostSnapshot("node1", ("all",), facts=HostFacts())  # the inventory: a VM
    params = {"required_limits": ["SystemMaxUse"]}
    assert "tmpfs" in expect.fail(audit_logging.test_aud_005, host=host, params=params,
                                  evidence={}, host_snapshot=own_kernel)


class _NetNode:
    """An inventory host (zones in its variables) whose node declares its own zones and
    filters nothing."""

    def __init__(self, variables: dict[str, Any], declared: dict[str, Any],
                 listening: str = "", live: str = '{"nftables": []}',
                 mfs_conf: str | None = "mfs.subnets.whitelist=0.0.0.0/0\n") -> None:
        self.backend = _Backend(variables)
        self.declared = declared
        self.listening = listening
        self.live = live
        self.mfs_conf = mfs_conf

    def run(self, command: str, *args: Any) -> _Out:
        import json

        return _Out(0, json.dumps({
            "nft": "/usr/sbin/nft", "live": {"rc": 0, "out": self.live, "err": ""},
            "persisted_exists": False, "enabled": "enabled", "active": "active",
            "ss": {"rc": 0, "out": self.listening, "err": ""},
            "declaration": json.dumps(self.declared),
            "mfs_conf": self.mfs_conf}))


class _Request:
    def __init__(self) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(stash={})


WIDE = {"zones": {"cluster": {"ipv4": ["0.0.0.0/0"], "ipv6": []},
                  "admin": {"ipv4": ["10.89.0.0/24"], "ipv6": []}}, "services": {}}
LAB_VARS = {
    "m7guard_lab_networks": {"cluster": {"ipv4": "10.89.1.0/24", "ipv6": "fd89:1::/64"}},
    "zero_trust_network_zones": {
        "admin": ["10.89.0.0/24"],
        "cluster": ["{{ m7guard_lab_networks['cluster']['ipv4'] }}",
                    "{{ m7guard_lab_networks['cluster']['ipv6'] }}"],
        "clients": ["10.89.2.0/24"],
    },
}


def test_net_003_and_009_judge_against_the_inventory_zones_not_the_nodes_declaration(
        expect) -> None:
    from m7guard.checks import zero_trust_network
    from m7guard.checks.support.snapshot import HostFacts, HostSnapshot

    node = _NetNode({"group_names": ["m7_nodes"], **LAB_VARS}, WIDE)
    evidence: dict[str, Any] = {}
    state = zero_trust_network.netstate.__wrapped__(_Request(), node, evidence)
    snap = HostSnapshot("node1", ("all",), facts=HostFacts())
    message = expect.fail(zero_trust_network.test_net_003, netstate=state, host_snapshot=snap,
                          params={"ports": [5660]}, evidence={})
    assert "tcp/5660" in message
    assert "outside the cluster" in expect.fail(zero_trust_network.test_net_009, netstate=state,
                                                evidence={})
    assert evidence["zones_source"] == "inventory (zero_trust_network_zones)"
    assert "cluster" in evidence["declaration_widens"]


def test_without_zones_in_the_inventory_the_declaration_is_used_and_said_so() -> None:
    from m7guard.checks import zero_trust_network

    node = _NetNode({"group_names": ["m7_nodes"]}, WIDE)
    evidence: dict[str, Any] = {}
    zero_trust_network.netstate.__wrapped__(_Request(), node, evidence)
    assert evidence["zones_source"].startswith("the node's declaration")


def test_the_controller_itself_keeps_its_own_container_detection() -> None:
    facts = _facts({"ansible_connection": "local"})
    assert facts.container == "docker" and facts.kind_source.startswith("the controller")
    assert _facts({"ansible_connection": "ssh"}).container is None


def _netstate(variables: dict[str, Any], declared: dict[str, Any], listening: str = "",
              live: str = '{"nftables": []}'):
    from m7guard.checks import zero_trust_network

    evidence: dict[str, Any] = {}
    node = _NetNode({**LAB_VARS, **variables}, declared, listening, live)
    return zero_trust_network.netstate.__wrapped__(_Request(), node, evidence), evidence


DENY_ALL = json.dumps({"nftables": [
    {"table": {"family": "inet", "name": "filter", "handle": 1}},
    {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
               "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
]})
NFS_LISTENING = "tcp   LISTEN 0      64           0.0.0.0:2049       0.0.0.0:*\n"
NFS_DECLARED = {**WIDE, "services": {"nfs": {"ports": ["2049"], "protocol": "tcp",
                                             "zones": ["clients"]}}}


def test_net_007_a_service_the_node_declares_for_itself_is_not_declared(expect) -> None:
    """The node adds nfs to its own declaration and listens on 2049; the inventory puts it
    in no group that runs nfs, so the listener is undeclared."""
    from m7guard.checks import zero_trust_network

    state, evidence = _netstate({"group_names": ["m7_nodes", "cldb"]}, NFS_DECLARED,
                                NFS_LISTENING)
    params = {"always_allowed_tcp": [], "ignored_udp_ports": []}
    message = expect.fail(zero_trust_network.test_net_007, netstate=state, params=params,
                          evidence={})
    assert "tcp/2049" in message
    assert evidence["declaration_adds_services"] == ["nfs"]
    assert evidence["services_source"].startswith("inventory")
    # the same node in the nfs group: the listener is one the inventory asks for
    state, _ = _netstate({"group_names": ["m7_nodes", "nfs"]}, NFS_DECLARED, NFS_LISTENING)
    expect.run(zero_trust_network.test_net_007, netstate=state, params=params, evidence={})


def test_net_004_a_client_service_left_out_of_the_node_declaration_is_still_required(
        expect) -> None:
    """A CLDB node whose declaration lists no service: its CLDB port is closed to the
    clients, which the inventory's cldb group requires."""
    from m7guard.checks import zero_trust_network
    from m7guard.checks.support.snapshot import HostFacts, HostSnapshot

    state, _ = _netstate({"group_names": ["m7_nodes", "cldb"]}, WIDE, live=DENY_ALL)
    snap = HostSnapshot("node1", ("all",), facts=HostFacts())
    message = expect.fail(zero_trust_network.test_net_004, netstate=state, host_snapshot=snap,
                          params={"ports": [7222]}, evidence={})
    assert "cldb tcp/7222" in message and "closed to the clients" in message


def test_the_services_judged_are_the_inventory_ones_not_the_declared_ones() -> None:
    """NET-004/007/008 read netstate.declaration.services: the inventory's, for every one."""
    state, _ = _netstate({"group_names": ["m7_nodes", "cldb"]}, WIDE)
    assert "cldb" in state.declaration.services
    assert "nfs" not in state.declaration.services


def test_invalid_network_variables_are_an_error_naming_the_variable() -> None:
    import pytest

    from m7guard.checks.support.verdict import EvidenceError

    with pytest.raises(EvidenceError, match=r"zero_trust_network_group_services\.cldb\[0\]"):
        _netstate({"group_names": ["cldb"],
                   "zero_trust_network_group_services": {"cldb": ["no_such_service"]}}, WIDE)
    with pytest.raises(EvidenceError, match="zero_trust_network_services cannot be rendered"):
        _netstate({"zero_trust_network_services": "{{ my_services }}"}, WIDE)


def test_templated_services_are_rendered_with_the_hosts_variables() -> None:
    """As the lab inventory writes it: extra services for the CLDB nodes only."""
    lab = {"zero_trust_network_services":
           "{{ ['mcs', 'hue'] if 'cldb' in group_names else [] }}"}
    state, _ = _netstate({"group_names": ["m7_nodes", "cldb"], **lab}, WIDE)
    assert {"mcs", "hue", "cldb"} <= set(state.declaration.services)
    state, _ = _netstate({"group_names": ["m7_nodes"], **lab}, WIDE)
    assert set(state.declaration.services) == {"ssh"}


@pytest.mark.parametrize(("mfs_conf", "words"), [
    (None, "mfs.conf does not exist"),
    ("mfs.server.ip=10.89.1.5\n", "mfs.subnets.whitelist is not set"),
    ("mfs.subnets.whitelist=10.89.1.0/24,10.89.0.0/24\n", "outside the cluster"),
    ("mfs.subnets.whitelist=10.89.1.0/24\nmfs.subnets.whitelist=0.0.0.0/0\n",
     "outside the cluster"),
])
def test_net_009_fails_for_mfs_open_beyond_the_cluster(expect, mfs_conf: str | None,
                                                        words: str) -> None:
    """A hardened node's mfs.conf (the cluster subnet only) with one thing broken: the file
    gone, the whitelist removed, a subnet added, a later line that widens it."""
    from m7guard.checks import zero_trust_network

    node = _NetNode({"group_names": ["m7_nodes"], **LAB_VARS}, WIDE, mfs_conf=mfs_conf)
    state = zero_trust_network.netstate.__wrapped__(_Request(), node, {})
    assert words in expect.fail(zero_trust_network.test_net_009, netstate=state, evidence={})


def test_net_009_passes_with_the_cluster_subnet_only(expect) -> None:
    from m7guard.checks import zero_trust_network

    node = _NetNode({"group_names": ["m7_nodes"], **LAB_VARS}, WIDE,
                    mfs_conf="mfs.server.ip=10.89.1.5\nmfs.subnets.whitelist=10.89.1.0/24\n")
    state = zero_trust_network.netstate.__wrapped__(_Request(), node, {})
    evidence: dict[str, Any] = {}
    expect.run(zero_trust_network.test_net_009, netstate=state, evidence=evidence)
    assert evidence["mfs.subnets.whitelist"] == "10.89.1.0/24"
