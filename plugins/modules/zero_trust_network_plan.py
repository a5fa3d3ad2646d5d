#!/usr/bin/python
"""Validate zero_trust_network's input and compute the host's firewall plan."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Union

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: zero_trust_network_plan
short_description: Validate zero_trust_network's variables and compute one host's firewall plan
version_added: "0.1.0"
description:
  - Checks every zone network, service name, port and zone reference, naming the variable
    at fault, and computes what the host's nftables ruleset must allow - the address sets
    per zone and family, the accept rules, the open ports per zone, whether the controller's
    address is inside the SSH allow-list and the MFS subnet whitelist.
  - Changes nothing on the host; runs in check mode.
options:
  zones:
    description: zero_trust_network_zones.
    type: dict
    required: true
  required_zones:
    description: Zone names that must be present.
    type: list
    elements: str
    default: []
  catalog:
    description: Known services (the role's vars/main.yml).
    type: dict
    required: true
  group_services:
    description: zero_trust_network_group_services.
    type: dict
    default: {}
  services:
    description: zero_trust_network_services.
    type: list
    elements: raw
    default: []
  service_zones:
    description: zero_trust_network_service_zones.
    type: dict
    default: {}
  custom_services:
    description: zero_trust_network_custom_services.
    type: dict
    default: {}
  host_groups:
    description: The host's inventory groups.
    type: list
    elements: str
    default: []
  peer_addresses:
    description: Per peer group, the other members as C({host, addresses}).
    type: dict
    default: {}
  controller_address:
    description: The controller's address as the host sees it.
    type: str
    default: ""
  egress_policy:
    description: accept or drop.
    type: str
    default: accept
  egress_zones:
    description: Zones the host may connect to when egress is drop.
    type: list
    elements: str
    default: []
  egress_lists:
    description: Allow-list name (dns, ntp, kms, mirrors) to networks.
    type: dict
    default: {}
  mapr_present:
    description: Whether /opt/mapr exists.
    type: bool
    default: false
  mfs_whitelist:
    description: zero_trust_network_mfs_whitelist.
    type: bool
    default: true
  table:
    description: zero_trust_network_table.
    type: str
    default: m7guard
  log_prefix:
    description: zero_trust_network_log_prefix.
    type: str
    default: "m7guard-drop "
  log_rate:
    description: zero_trust_network_log_rate.
    type: str
    default: 10/minute
  icmp_rate:
    description: zero_trust_network_icmp_rate.
    type: str
    default: 10/second
  confirm_timeout:
    description: zero_trust_network_confirm_timeout.
    type: raw
    default: 60
author: m7guard
"""

EXAMPLES = r"""
- name: Plan the firewall
  zero_trust_network_plan:
    zones: {admin: [10.0.3.0/24], cluster: [10.0.1.0/24], clients: [10.0.2.0/24]}
    catalog: "{{ __zero_trust_network_catalog }}"
    host_groups: "{{ group_names }}"
  register: planned
"""

RETURN = r"""
plan:
  description: The host's firewall plan (sets, accept rules, open ports per zone, controller check).
  returned: success
  type: dict
"""

V = "zero_trust_network_"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
RATE = re.compile(r"^[1-9][0-9]{0,5}/(second|minute|hour|day)$")
PROTOCOLS = ("tcp", "udp", "both")
EGRESS_PORTS = {
    "dns": [("udp", [53]), ("tcp", [53])],
    "ntp": [("udp", [123])],
    "kms": [("tcp", [443])],
    "mirrors": [("tcp", [80, 443])],
}


class PlanError(ValueError):
    """Input that the role refuses, with a message naming the variable."""


# typing.Union, not X | Y: a node's Python may be 3.9 (Debian 11)
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def _network(value: Any, where: str) -> Network:
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"{where}: {value!r} is not an IPv4 or IPv6 network (CIDR text)")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        reason = ("has host bits set" if "host bits" in str(exc)
                  else "is not a valid IPv4 or IPv6 network")
        raise PlanError(f"{where}: {value!r} {reason}") from None


def _address(value: Any, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise PlanError(f"{where}: {value!r} is not an IP address") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _ports(value: Any, where: str) -> list[tuple[int, int]]:
    if not isinstance(value, list) or not value:
        raise PlanError(
            f"{where}: must be a non-empty list of ports (1-65535) or 'first-last' ranges"
        )
    spans = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        text = str(item).strip()
        if isinstance(item, bool) or not re.fullmatch(r"[0-9]+(-[0-9]+)?", text):
            raise PlanError(f"{here}: {item!r} is not a port number or a 'first-last' range")
        lo, _, hi = text.partition("-")
        first, last = int(lo), int(hi or lo)
        for port in (first, last):
            if not 1 <= port <= 65535:
                raise PlanError(f"{here}: port {port} is out of range 1-65535")
        if first > last:
            raise PlanError(f"{here}: range {text} runs backwards")
        spans.append((first, last))
    return sorted(set(spans))


def _port_text(span: tuple[int, int]) -> str:
    return str(span[0]) if span[0] == span[1] else f"{span[0]}-{span[1]}"


def _nft_ports(spans: list[tuple[int, int]]) -> str:
    texts = [_port_text(s) for s in spans]
    return texts[0] if len(texts) == 1 else "{ " + ", ".join(texts) + " }"


def _zones(params: dict[str, Any]) -> dict[str, list[Network]]:
    zones = params["zones"]
    if not isinstance(zones, dict):
        raise PlanError(f"{V}zones: must be a mapping of zone name to a list of networks")
    for req in params["required_zones"]:
        if req not in zones:
            raise PlanError(f"{V}zones: the zone {req!r} is missing (it may be an empty list)")
    out: dict[str, list[Network]] = {}
    for zone, nets in zones.items():
        if not isinstance(zone, str) or not NAME.match(zone):
            raise PlanError(f"{V}zones: zone name {zone!r} must match {NAME.pattern}")
        if nets is None:
            nets = []
        if not isinstance(nets, list):
            raise PlanError(f"{V}zones.{zone}: must be a list of networks, not {nets!r}")
        parsed = [_network(n, f"{V}zones.{zone}[{i}]") for i, n in enumerate(nets)]
        out[zone] = parsed
    admin = out.get("admin")
    if admin is not None and not admin:
        raise PlanError(
            f"{V}zones.admin is empty: SSH would be closed to every address. "
            "List the networks administrators and automation connect from"
        )
    for net in admin or []:
        if net.prefixlen == 0:
            raise PlanError(f"{V}zones.admin: {net} would accept SSH from every address")
    return out


def _collapse(nets: list[Network], version: int) -> list[str]:
    same = [n for n in nets if n.version == version]
    return [str(n) for n in ipaddress.collapse_addresses(same)]  # type: ignore[arg-type]


def _service_defs(params: dict[str, Any], zones: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every service the host could run: the catalog, re-zoned, plus the custom ones."""
    services: dict[str, dict[str, Any]] = {}
    for name, spec in params["catalog"].items():
        services[name] = {
            "ports": _ports(spec["ports"], f"catalog {name}.ports"),
            "protocol": spec.get("protocol", "tcp"),
            "zones": list(spec.get("zones", [])),
            "peers": spec.get("peers"),
            "description": spec.get("description", ""),
        }
    custom = params["custom_services"] or {}
    if not isinstance(custom, dict):
        raise PlanError(f"{V}custom_services: must be a mapping of service name to its definition")
    for name, spec in custom.items():
        where = f"{V}custom_services.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            raise PlanError(f"{V}custom_services: service name {name!r} must match {NAME.pattern}")
        if name in services:
            raise PlanError(
                f"{where}: {name!r} is a catalog service; change its zones with "
                f"{V}service_zones instead"
            )
        if not isinstance(spec, dict):
            raise PlanError(f"{where}: must be a mapping with ports, protocol and zones")
        unknown = set(spec) - {"ports", "protocol", "zones", "description"}
        if unknown:
            raise PlanError(f"{where}: unknown keys {sorted(unknown)}")
        protocol = spec.get("protocol", "tcp")
        if protocol not in PROTOCOLS:
            raise PlanError(f"{where}.protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        services[name] = {
            "ports": _ports(spec.get("ports"), f"{where}.ports"),
            "protocol": protocol,
            "zones": _zone_refs(spec.get("zones", []), zones, f"{where}.zones"),
            "peers": None,
            "description": str(spec.get("description", "")),
        }
    overrides = params["service_zones"] or {}
    if not isinstance(overrides, dict):
        raise PlanError(f"{V}service_zones: must be a mapping of service name to a list of zones")
    for name, zlist in overrides.items():
        where = f"{V}service_zones.{name}"
        if name not in services:
            raise PlanError(f"{where}: unknown service {name!r}; {_known(services)}")
        if name == "ssh":
            raise PlanError(
                f"{where}: SSH is accepted only from the admin zone and cannot be re-zoned"
            )
        services[name]["zones"] = _zone_refs(zlist, zones, where)
        services[name]["peers"] = None
    for name, spec in services.items():
        for zone in spec["zones"]:
            if zone not in zones:
                raise PlanError(
                    f"{V}zones: the zone {zone!r} that service {name!r} uses is missing"
                )
    return services


def _zone_refs(value: Any, zones: dict[str, Any], where: str) -> list[str]:
    if not isinstance(value, list):
        raise PlanError(f"{where}: must be a list of zone names")
    for i, zone in enumerate(value):
        if zone not in zones:
            raise PlanError(
                f"{where}[{i}]: unknown zone {zone!r}; zones are {', '.join(sorted(zones))}"
            )
    return list(value)


def _known(services: dict[str, Any]) -> str:
    return "known services: " + ", ".join(sorted(services))


def _enabled(params: dict[str, Any], services: dict[str, Any]) -> list[str]:
    names = ["ssh"]
    groups = params["group_services"] or {}
    if not isinstance(groups, dict):
        raise PlanError(f"{V}group_services: must be a mapping of group name to service names")
    for group, members in groups.items():
        if not isinstance(members, list):
            raise PlanError(f"{V}group_services.{group}: must be a list of service names")
        for i, name in enumerate(members):
            if name not in services:
                raise PlanError(
                    f"{V}group_services.{group}[{i}]: unknown service {name!r}; {_known(services)}"
                )
            if group in params["host_groups"] and name not in names:
                names.append(name)
    extra = params["services"] or []
    for i, name in enumerate(extra):
        if not isinstance(name, str) or name not in services:
            raise PlanError(f"{V}services[{i}]: unknown service {name!r}; {_known(services)}")
        if name not in names:
            names.append(name)
    return names


Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _peer_sets(params: dict[str, Any], group: str) -> list[Address]:
    out = []
    for member in params["peer_addresses"].get(group, []) or []:
        host = member.get("host", "?")
        for i, addr in enumerate(member.get("addresses", []) or []):
            out.append(_address(addr, f"{V}node_addresses[{i}] of {host}"))
    return out


def _source_label(source: str) -> str:
    kind, name = source.split("_", 1)
    return name if kind == "zone" else f"peers in {name}"


def _protocols(protocol: str) -> list[str]:
    return ["tcp", "udp"] if protocol == "both" else [protocol]


def _simple(params: dict[str, Any]) -> None:
    if not isinstance(params["table"], str) or not NAME.match(params["table"]):
        raise PlanError(f"{V}table: {params['table']!r} must match {NAME.pattern}")
    prefix = params["log_prefix"]
    if not isinstance(prefix, str) or not prefix.strip() or len(prefix) > 60 or any(
        c in prefix for c in "\"\\\n;{}#"
    ):
        raise PlanError(f"{V}log_prefix: {prefix!r} must be 1-60 characters without quotes, "
                        "backslashes, braces, ';' or '#'")
    for key in ("log_rate", "icmp_rate"):
        if not RATE.match(str(params[key])):
            raise PlanError(f"{V}{key}: {params[key]!r} must look like 10/second or 10/minute")
    try:
        timeout = int(params["confirm_timeout"])
    except (TypeError, ValueError):
        timeout = -1
    if isinstance(params["confirm_timeout"], bool) or not 10 <= timeout <= 3600:
        raise PlanError(
            f"{V}confirm_timeout: {params['confirm_timeout']!r} must be 10-3600 seconds"
        )
    if params["egress_policy"] not in ("accept", "drop"):
        raise PlanError(f"{V}egress_policy: {params['egress_policy']!r} must be accept or drop")


def _declared(services: dict[str, Any], enabled: list[str]) -> dict[str, dict[str, Any]]:
    return {
        n: {
            "ports": [_port_text(p) for p in services[n]["ports"]],
            "protocol": services[n]["protocol"],
            "zones": services[n]["zones"],
            "peers": services[n]["peers"],
        }
        for n in enabled
    }


def planned_services(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services the host runs (name -> ports, protocol, zones, peers), as build_plan
    gives them. Needs only zones, required_zones, catalog, group_services, services,
    service_zones, custom_services and host_groups: the NET checks compute it on the
    controller from the inventory, to judge a node against what it should run rather than
    against the declaration the node carries."""
    zones = _zones(params)
    services = _service_defs(params, zones)
    return _declared(services, _enabled(params, services))


def build_plan(params: dict[str, Any]) -> dict[str, Any]:
    _simple(params)
    zones = _zones(params)
    services = _service_defs(params, zones)
    enabled = _enabled(params, services)

    sets: list[dict[str, Any]] = []
    for zone, nets in zones.items():
        for version, typ in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            sets.append({"name": f"zone_{zone}_v{version}", "type": typ,
                         "elements": _collapse(nets, version)})

    # (source set, protocol) -> ports and the services behind them
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    open_ports: dict[str, dict[str, list[str]]] = {z: {"tcp": [], "udp": []} for z in zones}
    peer_groups: dict[str, list[Any]] = {}
    for name in enabled:
        spec = services[name]
        sources = [f"zone_{z}" for z in spec["zones"]]
        if spec["peers"]:
            group = spec["peers"]
            peer_groups.setdefault(group, _peer_sets(params, group))
            sources.append(f"peers_{group}")
        for proto in _protocols(spec["protocol"]):
            for source in sources:
                entry = grouped.setdefault((source, proto), {"ports": [], "services": []})
                entry["ports"] += spec["ports"]
                if name not in entry["services"]:
                    entry["services"].append(name)
            for zone in spec["zones"]:
                open_ports[zone][proto] += [_port_text(p) for p in spec["ports"]]
            if spec["peers"]:
                key = f"peers:{spec['peers']}"
                open_ports.setdefault(key, {"tcp": [], "udp": []})
                open_ports[key][proto] += [_port_text(p) for p in spec["ports"]]
    for group, addrs in sorted(peer_groups.items()):
        for version, typ in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            nets = [ipaddress.ip_network(a) for a in addrs if a.version == version]
            sets.append({"name": f"peers_{group}_v{version}", "type": typ,
                         "elements": _collapse(nets, version)})
    set_elements = {s["name"]: s["elements"] for s in sets}

    rules = []
    for (source, proto), entry in grouped.items():
        spans = sorted(set(entry["ports"]))
        for version, fam in ((4, "ip"), (6, "ip6")):
            name = f"{source}_v{version}"
            if not set_elements.get(name):
                continue
            rules.append({
                "family": fam, "set": name, "proto": proto, "ports": _nft_ports(spans),
                "comment": f"{_source_label(source)}: {', '.join(entry['services'])}",
            })
    for zone in open_ports.values():
        for proto in zone:
            zone[proto] = sorted(set(zone[proto]), key=lambda t: int(t.split("-")[0]))

    egress = _egress(params, zones)
    if egress["policy"] == "drop":
        sets += egress["sets"]

    ssh_nets = [n for z in services["ssh"]["zones"] for n in zones[z]]
    controller = str(params["controller_address"] or "").strip()
    controller_allowed = False
    if controller:
        addr = _address(controller, f"{V}controller_address (or SSH_CONNECTION)")
        controller = str(addr)
        controller_allowed = any(addr in n for n in ssh_nets)

    whitelist = ",".join(_collapse(zones["cluster"], 4)) if "cluster" in zones else ""
    if params["mapr_present"] and params["mfs_whitelist"] and not whitelist:
        raise PlanError(
            f"{V}zones.cluster has no IPv4 network: mfs.subnets.whitelist would be empty "
            f"(MapR is installed here); list the cluster networks or set {V}mfs_whitelist: false"
        )

    return {
        "table": params["table"],
        "zones": {z: {"ipv4": _collapse(n, 4), "ipv6": _collapse(n, 6)} for z, n in zones.items()},
        "services": _declared(services, enabled),
        "sets": sets,
        "rules": rules,
        "open_ports": open_ports,
        "egress": {k: v for k, v in egress.items() if k != "sets"},
        "ssh_networks": [str(n) for n in ssh_nets],
        "controller_address": controller,
        "controller_allowed": controller_allowed,
        "mfs_whitelist": whitelist,
    }


def _egress(params: dict[str, Any], zones: dict[str, Any]) -> dict[str, Any]:
    policy = params["egress_policy"]
    lists = params["egress_lists"] or {}
    sets: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    zone_refs = _zone_refs(params["egress_zones"] or [], zones, f"{V}egress_zones")
    for name, nets in sorted(lists.items()):
        if name not in EGRESS_PORTS:
            raise PlanError(f"egress allow-list {name!r} is not one of {', '.join(EGRESS_PORTS)}")
        if not isinstance(nets, list):
            raise PlanError(f"{V}egress_{name}: must be a list of networks")
        parsed = [_network(n, f"{V}egress_{name}[{i}]") for i, n in enumerate(nets)]
        for version, typ, fam in ((4, "ipv4_addr", "ip"), (6, "ipv6_addr", "ip6")):
            elements = _collapse(parsed, version)
            sets.append({"name": f"egress_{name}_v{version}", "type": typ, "elements": elements})
            if elements:
                for proto, ports in EGRESS_PORTS[name]:
                    rules.append({"family": fam, "set": f"egress_{name}_v{version}", "proto": proto,
                                  "ports": _nft_ports([(p, p) for p in ports]), "comment": name})
    zone_rules = []
    for zone in zone_refs:
        for version, fam in ((4, "ip"), (6, "ip6")):
            if _collapse(zones[zone], version):
                zone_rules.append({"family": fam, "set": f"zone_{zone}_v{version}",
                                   "comment": f"to zone {zone}"})
    return {"policy": policy, "sets": sets, "rules": rules, "zone_rules": zone_rules,
            "zones": zone_refs}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "zones": {"type": "dict", "required": True},
            "required_zones": {"type": "list", "elements": "str", "default": []},
            "catalog": {"type": "dict", "required": True},
            "group_services": {"type": "dict", "default": {}},
            "services": {"type": "list", "elements": "raw", "default": []},
            "service_zones": {"type": "dict", "default": {}},
            "custom_services": {"type": "dict", "default": {}},
            "host_groups": {"type": "list", "elements": "str", "default": []},
            "peer_addresses": {"type": "dict", "default": {}},
            "controller_address": {"type": "str", "default": ""},
            "egress_policy": {"type": "str", "default": "accept"},
            "egress_zones": {"type": "list", "elements": "str", "default": []},
            "egress_lists": {"type": "dict", "default": {}},
            "mapr_present": {"type": "bool", "default": False},
            "mfs_whitelist": {"type": "bool", "default": True},
            "table": {"type": "str", "default": "m7guard"},
            "log_prefix": {"type": "str", "default": "m7guard-drop "},
            "log_rate": {"type": "str", "default": "10/minute"},
            "icmp_rate": {"type": "str", "default": "10/second"},
            "confirm_timeout": {"type": "raw", "default": 60},
        },
        supports_check_mode=True,
    )
    try:
        plan = build_plan(module.params)
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, plan=plan)


if __name__ == "__main__":
    main()
