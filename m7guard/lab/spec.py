"""What the local lab consists of: networks, nodes and the groups later roles use.

The lab stands in for an M7i VPC. Each zone of the VPC is a podman network with a subnet
the lab owns; a data node has an interface in every zone that can send it traffic, so a
packet from a client or an outsider reaches the node with its real source address and the
node's own firewall decides. The controller (this machine) is the gateway of every lab
network and reaches nodes through their `admin` address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

LAB_LABEL = "m7guard.lab"
"""Label carried by every container and network the lab creates."""

DEFAULT_LAB_NAME = "m7g"


@dataclass(frozen=True)
class Network:
    zone: str
    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network

    def podman_name(self, lab: str) -> str:
        return f"{lab}-{self.zone}"

    @property
    def gateway4(self) -> ipaddress.IPv4Address:
        return self.ipv4.network_address + 1

    @property
    def gateway6(self) -> ipaddress.IPv6Address:
        return self.ipv6.network_address + 1


@dataclass(frozen=True)
class ContainerNode:
    name: str
    host_index: int
    zones: tuple[str, ...]
    ssh_zone: str
    groups: tuple[str, ...]
    instance_type: str | None = None


@dataclass(frozen=True)
class VmNode:
    name: str
    groups: tuple[str, ...]
    instance_type: str
    ssh_port: int
    memory_mib: int = 2048
    cpus: int = 2
    nvme_serial: str = "vol0a1b2c3d4e5f60718"
    nvme_size_mib: int = 1024


@dataclass(frozen=True)
class LabSpec:
    name: str = DEFAULT_LAB_NAME
    networks: tuple[Network, ...] = field(default_factory=lambda: DEFAULT_NETWORKS)
    containers: tuple[ContainerNode, ...] = field(default_factory=lambda: DEFAULT_CONTAINERS)
    vm: VmNode = field(default_factory=lambda: DEFAULT_VM)

    def network(self, zone: str) -> Network:
        for net in self.networks:
            if net.zone == zone:
                return net
        raise KeyError(zone)

    def container(self, name: str) -> ContainerNode:
        for node in self.containers:
            if node.name == name:
                return node
        raise KeyError(name)

    def address4(self, node: ContainerNode, zone: str) -> ipaddress.IPv4Address:
        return self.network(zone).ipv4.network_address + node.host_index

    def address6(self, node: ContainerNode, zone: str) -> ipaddress.IPv6Address:
        return self.network(zone).ipv6.network_address + node.host_index

    def container_name(self, node: ContainerNode) -> str:
        return f"{self.name}-{node.name}"

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.containers] + [self.vm.name]


def _zone(zone: str, n: int, lab_id: int = 0) -> Network:
    return Network(
        zone,
        ipaddress.ip_network(f"10.{231 + lab_id}.{n}.0/24"),
        ipaddress.ip_network(f"fd31:{231 + lab_id}:{n}::/64"),
    )


def _networks(lab_id: int = 0) -> tuple[Network, ...]:
    return tuple(
        _zone(zone, n, lab_id)
        for zone, n in (("cluster", 1), ("clients", 2), ("admin", 3), ("untrusted", 4))
    )


DEFAULT_NETWORKS: tuple[Network, ...] = _networks()

_DATA_ZONES = ("admin", "cluster", "clients", "untrusted")

DEFAULT_CONTAINERS: tuple[ContainerNode, ...] = (
    ContainerNode("node1", 11, _DATA_ZONES, "admin",
                  ("m7_nodes", "cldb", "zookeeper", "fileserver"), "m7i.8xlarge"),
    ContainerNode("node2", 12, _DATA_ZONES, "admin", ("m7_nodes", "fileserver"), "m7i.2xlarge"),
    ContainerNode("node3", 13, _DATA_ZONES, "admin", ("m7_nodes", "fileserver"), "m7i.2xlarge"),
    ContainerNode("client1", 21, ("clients",), "clients", ("clients",)),
    ContainerNode("outsider", 41, ("untrusted",), "untrusted", ("untrusted",)),
    ContainerNode("kdc", 31, ("admin",), "admin", ("kdcs",)),
    # Central syslog collector: receives forwarded logs from the data nodes.
    ContainerNode("collector", 32, ("admin",), "admin", ("collectors",)),
)

DEFAULT_VM = VmNode("vm1", ("m7_nodes", "vm"), "m7i.large", ssh_port=2231)

MAX_LAB_ID = 9


def spec_for(lab_id: int) -> LabSpec:
    """Lab number `lab_id` (0-9): its own names, subnets and VM port, so that several labs
    can run side by side on one machine. Lab 0 is the default one."""
    if not 0 <= lab_id <= MAX_LAB_ID:
        raise ValueError(f"M7GUARD_LAB_ID must be 0 to {MAX_LAB_ID}, not {lab_id}")
    if lab_id == 0:
        return LabSpec()
    return LabSpec(
        name=f"{DEFAULT_LAB_NAME}{lab_id}",
        networks=_networks(lab_id),
        vm=VmNode("vm1", DEFAULT_VM.groups, DEFAULT_VM.instance_type,
                  ssh_port=DEFAULT_VM.ssh_port + 10 * lab_id),
    )


ALL_GROUPS: tuple[str, ...] = (
    "m7_nodes", "cldb", "zookeeper", "fileserver", "clients", "untrusted", "kdcs", "collectors",
    "vm",
)
