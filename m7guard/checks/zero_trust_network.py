"""Network segmentation checks: the NET-* rules of policies/rules/zero_trust_network/.

Each host's firewall state is read once (m7guard/netpolicy/hoststate.py) and the live nftables
ruleset is evaluated for the ports a rule names (m7guard/netpolicy/nftables.py): which source
addresses could get through (`may`), or surely get through (`sure`). The networks of each zone
and the services a host runs come from the inventory on the controller (the zones variable and
the role's plan of the host's services, m7guard/checks/support/netplan.py); the declaration
zero_trust_network writes on the host is evidence, and is used only when the inventory has no
zones (said in the evidence). Without either, no network is trusted, so any opening fails the
admin-, cluster- and client-only rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from m7guard.checks import rule
from m7guard.checks.support.netplan import inventory_services
from m7guard.checks.support.plugin import host_name
from m7guard.checks.support.snapshot import HostSnapshot
from m7guard.checks.support.verdict import EvidenceError
from m7guard.netpolicy.addrset import AddrSet, Family
from m7guard.netpolicy.hoststate import DECLARATION, NetState, firewall_tables, gather_command
from m7guard.netpolicy.nftables import Probe, Ruleset

_CACHE = pytest.StashKey[dict[str, NetState]]()


@pytest.fixture
def netstate(request: pytest.FixtureRequest, host: Any, evidence: dict[str, Any]) -> NetState:
    """The host's firewall state, read once per host and audit."""
    cache = request.config.stash.setdefault(_CACHE, {})
    name = host_name(host)
    if name not in cache:
        result = host.run(gather_command())
        if result.rc != 0:
            raise RuntimeError(
                f"could not read the firewall state (exit {result.rc}): "
                f"{(result.stderr or result.stdout).strip()[-300:]}"
            )
        cache[name] = NetState.parse(result.stdout)
        _zones_from_inventory(host, cache[name])
    state = cache[name]
    evidence.update(state.zone_evidence)
    evidence["nftables"] = state.nft or "not installed"
    if state.live_error:
        evidence["ruleset_error"] = state.live_error
    evidence["declaration"] = DECLARATION if state.declaration.present else "none"
    return state


ZONES_VARIABLE = "zero_trust_network_zones"


def inventory_zones(host: Any) -> tuple[dict[str, list[str]] | None, str]:
    """The zones (name -> networks) the inventory gives the host, Jinja expressions rendered
    with its variables; (None, why) when there is no inventory or no zones in it."""
    backend = host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return None, "no Ansible inventory"
    variables = backend.get_variables()
    zones = variables.get(ZONES_VARIABLE)
    if not isinstance(zones, dict):
        return None, f"{ZONES_VARIABLE} is not in the inventory"
    env = SandboxedEnvironment(undefined=StrictUndefined)
    out: dict[str, list[str]] = {}
    try:
        for zone, nets in zones.items():
            items = nets if isinstance(nets, list) else [] if nets is None else [nets]
            out[str(zone)] = [
                env.from_string(str(n)).render(**variables).strip() if "{{" in str(n)
                else str(n).strip()
                for n in items
            ]
    except TemplateError as exc:
        return None, f"{ZONES_VARIABLE} cannot be rendered on the controller: {exc}"
    return out, ""


def _zones_from_inventory(host: Any, state: NetState) -> None:
    """Judge against the zones of the inventory (the controller's), not the declaration the
    node carries; the node's declaration stays in the evidence, with any network it adds."""
    zones, why = inventory_zones(host)
    decl = state.declaration
    if zones is None:
        state.zone_evidence = {"zones_source": f"the node's declaration ({why}; not "
                                               "cross-checked)"}
        return
    new: dict[str, dict[str, list[str]]] = {}
    for zone, nets in zones.items():
        by_family: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
        for net in nets:
            try:
                version = ipaddress.ip_network(net, strict=False).version
            except ValueError:
                raise EvidenceError(f"{ZONES_VARIABLE}.{zone}: {net!r} is not a network") from None
            by_family["ipv4" if version == 4 else "ipv6"].append(net)
        new[zone] = by_family
    widens = {}
    for zone in decl.zones:
        for family in (4, 6):
            key = "ipv4" if family == 4 else "ipv6"
            extra = AddrSet.of(family, decl.zones.get(zone, {}).get(key, [])) - AddrSet.of(
                family, new.get(zone, {}).get(key, []))
            if extra:
                widens.setdefault(zone, []).append(extra.describe(3))
    state.zone_evidence = {
        "zones_source": f"inventory ({ZONES_VARIABLE})",
        "declaration_zones_on_node": decl.zones,
    }
    if widens:
        state.zone_evidence["declaration_widens"] = widens
    decl.zones = new
    services = inventory_services(host.backend.get_variables(), zones)
    state.zone_evidence["services_source"] = (
        "inventory (zero_trust_network_group_services and the host's groups, "
        "zero_trust_network_services, _service_zones, _custom_services)")
    state.zone_evidence["declaration_services_on_node"] = sorted(decl.services)
    adds = sorted(set(decl.services) - set(services))
    if adds:
        state.zone_evidence["declaration_adds_services"] = adds
    decl.services = services


def _ruleset(state: NetState) -> Ruleset:
    """The live ruleset; error when nft is installed but the ruleset cannot be read (an empty
    one in its place would be a guess). Without nft nothing filters: the empty ruleset."""
    if state.nft and state.live is None:
        raise EvidenceError(f"the live nftables ruleset cannot be read: {state.live_error}")
    return state.ruleset()


def _families(snap: HostSnapshot) -> tuple[Family, ...]:
    return (4, 6) if snap.facts.ipv6 else (4,)


def _outside(
    state: NetState, ports: list[int], allowed_zones: tuple[str, ...], families: tuple[Family, ...],
    proto: str = "tcp",
) -> list[str]:
    """Where the ruleset could let a new connection through from outside the zones."""
    rs = _ruleset(state)
    found = []
    for family in families:
        allowed = state.declaration.networks(allowed_zones, family)
        for port in ports:
            extra = rs.accepted(Probe(family, proto, port)) - allowed
            if extra:
                found.append(f"{proto}/{port} (IPv{family}) from {extra.describe(3)}")
    return found


def _fail_list(what: str, items: list[str], limit: int = 8) -> str:
    shown = "; ".join(items[:limit])
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return f"{what}: {shown}{more}"


@rule("NET-001")
def test_net_001(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """Inbound traffic is denied unless a rule allows it (IPv4 and IPv6)."""
    rs = _ruleset(netstate)
    problems = []
    for family in _families(host_snapshot):
        chains = rs.base_chains(family, "input")
        evidence[f"input_chains_v{family}"] = [f"{c.label()} policy {c.policy}" for c in chains]
        if not chains:
            problems.append(f"IPv{family}: no input filter chain, every packet is accepted")
            continue
        for proto in ("tcp", "udp"):
            for port in params["canary_ports"]:
                accepted = rs.accepted(Probe(family, proto, port))
                if accepted:
                    problems.append(
                        f"IPv{family}: {proto}/{port}, which no rule allows, is accepted from "
                        f"{accepted.describe(3)}"
                    )
    assert not problems, _fail_list("inbound is not default deny", problems)


@rule("NET-002")
def test_net_002(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """SSH and administrative interfaces accept connections only from the admin networks."""
    decl = netstate.declaration
    evidence["admin_networks"] = decl.zones.get("admin", {})
    problems = []
    for family in _families(host_snapshot):
        admin = decl.networks(("admin",), family)
        if admin.covers(AddrSet.of(family, ["0.0.0.0/0" if family == 4 else "::/0"])):
            problems.append(f"the declared admin networks (IPv{family}) are every address")
    problems += _outside(netstate, params["ports"], ("admin",), _families(host_snapshot))
    assert not problems, _fail_list("reachable from outside the admin networks", problems)


@rule("NET-003")
def test_net_003(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """Cluster-internal ports accept connections only from the cluster networks."""
    evidence["cluster_networks"] = netstate.declaration.zones.get("cluster", {})
    problems = _outside(netstate, params["ports"], ("cluster",), _families(host_snapshot))
    assert not problems, _fail_list("cluster-internal ports reachable from elsewhere", problems)


@rule("NET-004")
def test_net_004(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """Client-facing ports accept connections only from the client (and cluster) networks,
    and the client services the host declares are open to the client networks."""
    decl = netstate.declaration
    families = _families(host_snapshot)
    problems = _outside(netstate, params["ports"], ("clients", "cluster"), families)
    rs = _ruleset(netstate)
    closed = []
    for name, spec in sorted(decl.services.items()):
        if "clients" not in spec.get("zones", []) or spec.get("protocol") == "udp":
            continue
        for family in families:
            clients = decl.networks(("clients",), family)
            for text in spec.get("ports", []):
                port = int(str(text).split("-")[0])
                opened = rs.accepted(Probe(family, "tcp", port), "sure")
                if clients and not opened.covers(clients):
                    closed.append(
                        f"{name} tcp/{port} (IPv{family}) not open to {clients.describe(2)}"
                    )
    evidence["declared_client_services"] = sorted(
        n for n, s in decl.services.items() if "clients" in s.get("zones", [])
    )
    assert not problems, _fail_list("client ports reachable from outside the client and "
                                    "cluster networks", problems)
    assert not closed, _fail_list("declared client services closed to the clients", closed)


@rule("NET-005")
def test_net_005(netstate: NetState, evidence: dict[str, Any]) -> None:
    """The running ruleset is the persisted one, and nftables.service loads it at boot."""
    evidence["nftables.service"] = {"enabled": netstate.enabled, "active": netstate.active}
    assert netstate.nft, "nftables is not installed: no ruleset is loaded at boot"
    assert netstate.enabled == "enabled", (
        f"nftables.service is {netstate.enabled or 'missing'}: the ruleset is not loaded at boot"
    )
    assert netstate.persisted_doc is not None, (
        f"the persisted ruleset cannot be loaded: {netstate.persisted_error}"
    )
    assert netstate.live_doc is not None, f"the live ruleset cannot be read: {netstate.live_error}"
    live, saved = firewall_tables(netstate.live_doc), firewall_tables(netstate.persisted_doc)
    evidence["live_firewall_tables"] = sorted(live)
    evidence["persisted_firewall_tables"] = sorted(saved)
    assert live, "no filtering table is loaded"
    differ = sorted(t for t in set(live) | set(saved) if live.get(t) != saved.get(t))
    assert not differ, (
        "the running ruleset differs from /etc/nftables.conf in "
        + ", ".join(f"table {t}" + ("" if t in saved else " (not persisted)")
                    + ("" if t in live else " (not loaded)") for t in differ)
    )
    assert netstate.active == "active", (
        f"nftables.service is {netstate.active}: the persisted ruleset did not load"
    )


@rule("NET-006")
def test_net_006(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """Packets the default deny drops are logged, with a prefix and a rate limit."""
    rs = _ruleset(netstate)
    problems, logs = [], set()
    for family in _families(host_snapshot):
        if not rs.base_chains(family, "input"):
            problems.append(f"IPv{family}: no input filter chain, nothing is dropped or logged")
            continue
        for proto in ("tcp", "udp"):
            for port in params["canary_ports"]:
                outcome = rs.evaluate(Probe(family, proto, port))
                logs |= outcome.logs
                dropped = AddrSet.everything(family) - outcome.accepted
                unlogged = dropped - outcome.logged
                if unlogged:
                    problems.append(f"IPv{family} {proto}/{port}: drops from "
                                    f"{unlogged.describe(2)} are not logged")
    evidence["log_statements"] = [{"prefix": p, "rate_limited": lim} for p, lim in sorted(logs)]
    for prefix, limited in sorted(logs):
        if not prefix.strip():
            problems.append("a log statement on the drop path has no prefix")
        if not limited:
            problems.append(f"the log statement {prefix!r} has no rate limit")
    assert not problems, _fail_list("dropped packets are not logged as required", problems)


@rule("NET-007")
def test_net_007(netstate: NetState, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """No TCP or UDP service listens on a non-loopback address unless it is declared."""
    if netstate.sockets is None:
        evidence["listening"] = None
        raise EvidenceError(f"the listening sockets are unknown: {netstate.sockets_error}")
    decl = netstate.declaration
    declared = {"tcp": decl.ports("tcp") | set(params["always_allowed_tcp"]),
                "udp": decl.ports("udp") | set(params["ignored_udp_ports"])}
    undeclared = sorted(
        {str(s) for s in netstate.sockets if not s.loopback and s.port not in declared[s.proto]}
    )
    evidence["listening"] = sorted({str(s) for s in netstate.sockets if not s.loopback})
    evidence["declared_services"] = sorted(decl.services)
    assert not undeclared, _fail_list("services listening that are not declared", undeclared)


@rule("NET-008")
def test_net_008(netstate: NetState, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """IPv6 is filtered like IPv4: default deny, SSH admin-only, and each declared service open
    to the same zones over both families."""
    rs, decl = _ruleset(netstate), netstate.declaration
    problems = []
    if not rs.base_chains(6, "input"):
        problems.append("no input filter chain sees IPv6: every IPv6 packet is accepted")
    for port in params["canary_ports"]:
        for proto in ("tcp", "udp"):
            accepted = rs.accepted(Probe(6, proto, port))
            if accepted:
                problems.append(f"{proto}/{port}, which no rule allows, is accepted over IPv6 "
                                f"from {accepted.describe(2)}")
    problems += _outside(netstate, [22], ("admin",), (6,))
    parity = []
    for name, spec in sorted(decl.services.items()):
        proto = "udp" if spec.get("protocol") == "udp" else "tcp"
        for zone in spec.get("zones", []):
            v4, v6 = decl.networks((zone,), 4), decl.networks((zone,), 6)
            if not v4 or not v6:
                continue
            for text in spec.get("ports", []):
                port = int(str(text).split("-")[0])
                open4 = rs.accepted(Probe(4, proto, port), "sure").covers(v4)
                open6 = rs.accepted(Probe(6, proto, port), "sure").covers(v6)
                if open4 != open6:
                    parity.append(f"{name} {proto}/{port} from {zone}: IPv4 "
                                  f"{'open' if open4 else 'closed'}, IPv6 "
                                  f"{'open' if open6 else 'closed'}")
    evidence["zones_with_ipv6"] = sorted(z for z, n in decl.zones.items() if n.get("ipv6"))
    assert not problems, _fail_list("IPv6 is not filtered", problems)
    assert not parity, _fail_list("IPv4 and IPv6 disagree", parity)


@rule("NET-009")
def test_net_009(netstate: NetState, evidence: dict[str, Any]) -> None:
    """MFS accepts connections only from the cluster subnets (mfs.subnets.whitelist)."""
    text = netstate.mfs_conf
    assert text is not None, "/opt/mapr/conf/mfs.conf does not exist"
    values = [
        line.split("=", 1)[1].strip()
        for line in text.splitlines()
        if line.strip().startswith("mfs.subnets.whitelist") and "=" in line
    ]
    evidence["mfs.subnets.whitelist"] = values[-1] if values else None
    assert values and values[-1], "mfs.subnets.whitelist is not set: MFS accepts every subnet"
    cluster = netstate.declaration.networks(("cluster",), 4)
    evidence["cluster_networks"] = cluster.cidrs()
    try:
        listed = AddrSet.of(4, [n.strip() for n in values[-1].split(",") if n.strip()])
    except ValueError as exc:
        raise AssertionError(f"mfs.subnets.whitelist is not a list of subnets: {exc}") from None
    assert listed, f"mfs.subnets.whitelist lists no IPv4 subnet: {values[-1]!r}"
    extra = listed - cluster
    assert not extra, (
        f"mfs.subnets.whitelist allows {extra.describe(3)} outside the cluster networks"
    )


@rule("NET-010")
def test_net_010(netstate: NetState, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """Outbound connections are denied unless they go to an allowed destination."""
    rs, decl = _ruleset(netstate), netstate.declaration
    evidence["egress_policy"] = decl.egress_policy or "undeclared"
    problems = []
    for family in _families(host_snapshot):
        chains = rs.base_chains(family, "output")
        evidence[f"output_chains_v{family}"] = [f"{c.label()} policy {c.policy}" for c in chains]
        trusted = decl.networks(tuple(params["trusted_zones"]), family)
        for proto in ("tcp", "udp"):
            for port in params["canary_ports"]:
                extra = rs.accepted(Probe(family, proto, port, "output")) - trusted
                if extra:
                    problems.append(f"IPv{family} {proto}/{port} to {extra.describe(2)}")
    assert not problems, _fail_list("outbound connections allowed to any destination", problems)
