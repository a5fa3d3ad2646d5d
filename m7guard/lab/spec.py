"""What the local lab consists of: networks, nodes and the groups later roles use.

The lab stands in for an M7i VPC. Each zone of the VPC is a podman network with a subnet
the lab owns; a data node has an interface in every zone that can send it traffic, so a
packet from a client or an outsider reaches the node with its real source address and the
node's own firewall decides. The controller (this machine) is the gateway of every lab
network and reaches nodes through their `admin` address.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

LAB_LABEL = "m7guard.lab"
"""Label carried by every container and network the lab creates."""

DEFAULT_LAB_NAME = "m7g"

# Debian releases a lab node can run (docs/platforms.md): built with debootstrap from Debian's
# archive, the only operating-system archive these machines reach
RELEASES: tuple[str, ...] = ("bullseye", "bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"
# `lab up --matrix`: one data node per release, and the VM on the newest (its kernel, auditd
# and nftables are where kernel-level differences live); the lab's peers stay on the default
MATRIX: dict[str, str] = {"node1": "bookworm", "node2": "bullseye", "node3": "trixie",
                          "vm1": "trixie"}


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
    release: str = DEFAULT_RELEASE


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
    release: str = DEFAULT_RELEASE


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

    def mac(self, node: ContainerNode, zone: str) -> str:
        """The node's MAC address in a zone: fixed, so that a node replaced by `lab reset`
        keeps the link-layer address its neighbours (the host and the other nodes) have
        cached for its IP addresses, and is reachable as soon as it boots. A locally
        administered unicast address (02:...) carrying the IPv4 address, unique in the lab
        as that address is."""
        return "02:6d:" + ":".join(f"{b:02x}" for b in self.address4(node, zone).packed)

    def container_name(self, node: ContainerNode) -> str:
        return f"{self.name}-{node.name}"

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.containers] + [self.vm.name]

    def releases_of(self) -> dict[str, str]:
        """Each node's Debian release, by node name."""
        return {n.name: n.release for n in (*self.containers, self.vm)}

    def with_releases(self, releases: dict[str, str]) -> LabSpec:
        """This lab with the nodes named in RELEASES (node -> release) on those releases."""
        unknown = sorted(set(releases) - set(self.node_names))
        if unknown:
            raise ValueError(f"no lab node {', '.join(unknown)}; the lab has "
                             f"{', '.join(self.node_names)}")
        for name, release in sorted(releases.items()):
            if release not in RELEASES:
                raise ValueError(f"{name}: release {release!r} is not one of "
                                 f"{', '.join(RELEASES)}")
        return dataclasses.replace(
            self,
            containers=tuple(dataclasses.replace(n, release=releases.get(n.name, n.release))
                             for n in self.containers),
            vm=dataclasses.replace(self.vm, release=releases.get(self.vm.name, self.vm.release)),
        )


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
