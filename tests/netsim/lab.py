"""Reachability in the lab: the simulator on data nodes, probes from every kind of source, and
the matrix zero_trust_network's variables declare.

`declared_matrix()` derives, independently of the role's code, which (source, node, family,
port) connections must succeed: the role's catalog (vars/main.yml) and defaults
(defaults/main.yml), overridden by the inventory's variables as Ansible renders them.
`measured_matrix()` makes the real TCP connections: from the controller (this machine, in the
admin zone), from client1 (clients), outsider (untrusted) and from each data node to the
others (cluster), each to the target node's address in the source's zone, IPv4 and IPv6.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from labkit import BIN, ROOT, LabHandle

from netsim import tcp_probe

HERE = Path(__file__).resolve().parent
ROLE = ROOT / "roles" / "zero_trust_network"
DATA_NODES = ("node1", "node2", "node3")
SOURCES = {"controller": "admin", "client1": "clients", "outsider": "untrusted"}
SIM_DIR = "/usr/local/lib/m7guard-test"
SIM_UNIT = "dataf-simulator.service"
PROBE_TIMEOUT = 2.0

Cell = tuple[str, str, int, int]  # source, node, family, port


@dataclass
class NodeVars:
    groups: list[str]
    addresses: dict[str, dict[str, str]]
    zones: dict[str, list[str]]
    services: list[str]
    service_zones: dict[str, list[str]]
    node_addresses: list[str]


def role_catalog() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    return data["__zero_trust_network_catalog"]


def role_defaults() -> dict[str, Any]:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def inventory_vars(lab: LabHandle, hosts: tuple[str, ...] = DATA_NODES,
                   extra: tuple[str, ...] = ()) -> dict[str, NodeVars]:
    """The variables the role would see, as Ansible renders them from the inventory (plus
    the `extra` inventory sources)."""
    undefined = "__undefined__"
    names = {
        "zones": "zero_trust_network_zones",
        "services": "zero_trust_network_services",
        "service_zones": "zero_trust_network_service_zones",
        "node_addresses": "zero_trust_network_node_addresses",
    }
    fields = ", ".join(f"'{k}': {v} | default('{undefined}')" for k, v in names.items())
    expr = ("{{ {'groups': group_names, 'addresses': m7guard_lab_addresses, " + fields
            + "} | to_json }}")
    proc = subprocess.run(
        [str(BIN / "ansible"), "-i", str(lab.inventory),
         *[arg for source in extra for arg in ("-i", source)], ",".join(hosts),
         "-m", "ansible.builtin.debug", "-a", f"msg={expr}"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
        env={**os.environ, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    defaults = role_defaults()
    out: dict[str, NodeVars] = {}
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^(\S+) \| SUCCESS => ", proc.stdout, re.MULTILINE):
        result, _end = decoder.raw_decode(proc.stdout, match.end())
        msg = result["msg"]
        data = json.loads(msg) if isinstance(msg, str) else msg
        for key, var in names.items():
            if data[key] == undefined:
                data[key] = defaults.get(var, [])
        out[match.group(1)] = NodeVars(
            groups=data["groups"], addresses=data["addresses"], zones=data["zones"],
            services=data["services"], service_zones=data["service_zones"],
            node_addresses=data["node_addresses"],
        )
    assert set(out) == set(hosts), proc.stdout
    return out


def node_services(host: str, nv: NodeVars) -> dict[str, dict[str, Any]]:
    """Name -> {ports, protocol, zones, peers} of the services the host runs."""
    catalog = role_catalog()
    group_services = role_defaults()["zero_trust_network_group_services"]
    names = ["ssh"]
    for group in nv.groups:
        names += group_services.get(group, [])
    names += nv.services
    out = {}
    for name in dict.fromkeys(names):
        spec = dict(catalog[name])
        if name in nv.service_zones:
            spec["zones"], spec["peers"] = nv.service_zones[name], None
        out[name] = spec
    return out


def tcp_ports(services: dict[str, dict[str, Any]]) -> set[int]:
    return {p for s in services.values() if s["protocol"] in ("tcp", "both") for p in s["ports"]}


def probed_ports() -> list[int]:
    """Every TCP port of the catalog: served or not, open or closed, each is measured."""
    return sorted(tcp_ports(role_catalog()))


def _zone_of(source: str) -> str:
    return SOURCES.get(source, "cluster")


def _target(nv: NodeVars, zone: str, family: int) -> str:
    return nv.addresses[zone]["ipv4" if family == 4 else "ipv6"]


def declared_matrix(nodes: dict[str, NodeVars]) -> dict[Cell, bool]:
    """Whether each connection must succeed, from the role's variables alone."""
    groups: dict[str, set[str]] = {}
    for host, nv in nodes.items():
        for g in nv.groups:
            groups.setdefault(g, set()).add(host)
    matrix: dict[Cell, bool] = {}
    for host, nv in nodes.items():
        services = node_services(host, nv)
        for source in [*SOURCES, *nodes]:
            if source == host:
                continue
            zone = _zone_of(source)
            for family in (4, 6):
                for port in probed_ports():
                    allowed = any(
                        port in spec["ports"] and spec["protocol"] in ("tcp", "both")
                        and (zone in spec.get("zones", [])
                             or (spec.get("peers") and source in groups.get(spec["peers"], ())))
                        for spec in services.values()
                    )
                    matrix[(source, host, family, port)] = allowed
    return matrix


def _targets(nodes: dict[str, NodeVars], source: str) -> list[tuple[str, str, int, int]]:
    zone = _zone_of(source)
    return [
        (host, _target(nv, zone, family), family, port)
        for host, nv in nodes.items() if host != source
        for family in (4, 6)
        for port in probed_ports()
    ]


def probe_from(lab: LabHandle, source: str, pairs: list[tuple[str, int]]) -> dict[str, str]:
    """Connect from `source` (a lab host, or "controller") to every (address, port) at once;
    "address port" -> open, refused or timeout."""
    if source == "controller":
        return tcp_probe.run(pairs, PROBE_TIMEOUT)
    script = (HERE / "tcp_probe.py").read_text()
    lab.ssh(source, f"mkdir -p {SIM_DIR} && cat > {SIM_DIR}/tcp_probe.py "
                    f"<<'PROBE_EOF'\n{script}PROBE_EOF")
    proc = subprocess.run(
        [*lab.ssh_args(source), f"python3 {SIM_DIR}/tcp_probe.py {PROBE_TIMEOUT}"],
        input=json.dumps(pairs), capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, f"probe on {source}: {proc.stderr}"
    return dict(json.loads(proc.stdout))


def measured_matrix(lab: LabHandle, nodes: dict[str, NodeVars],
                    sources: tuple[str, ...] | None = None) -> dict[Cell, str]:
    """Real TCP connections from every source; each cell is open, refused or timeout."""
    chosen = sources or (*SOURCES, *nodes)

    def from_source(source: str) -> dict[Cell, str]:
        targets = _targets(nodes, source)
        raw = probe_from(lab, source, [(addr, port) for _h, addr, _f, port in targets])
        return {(source, h, f, p): raw[f"{a} {p}"] for h, a, f, p in targets}

    out: dict[Cell, str] = {}
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        for part in pool.map(from_source, chosen):
            out.update(part)
    return out


def settle(lab: LabHandle, nodes: dict[str, NodeVars], seconds: float = 90) -> None:
    """Wait until every source reaches every node address on TCP 22 (open or refused).

    A connection to an address a source cannot resolve yet times out as if it were dropped.
    A replaced node keeps its MAC addresses (LabSpec.mac), so the sources' neighbour caches
    stay right and this usually returns at once; it still waits for what a cache or a
    booting node has not settled. Only meaningful before any firewall (afterwards a drop
    and a lost packet look the same).
    """
    deadline = time.monotonic() + seconds
    sources = (*SOURCES, *nodes)
    while True:
        def lost(source: str) -> list[str]:
            pairs = sorted({(a, 22) for _h, a, _f, _p in _targets(nodes, source)})
            raw = probe_from(lab, source, pairs)
            return [f"{source} -> {k}" for k, v in raw.items() if v not in ("open", "refused")]

        with ThreadPoolExecutor(max_workers=len(sources)) as pool:
            missing = [m for part in pool.map(lost, sources) for m in part]
        if not missing:
            return
        assert time.monotonic() < deadline, f"the lab network does not settle: {missing}"
        time.sleep(2)


def install_simulator(lab: LabHandle, host: str, ports: set[int]) -> None:
    """Install the simulator as an enabled systemd unit listening on `ports` (not 22)."""
    script = (HERE / "service_simulator.py").read_text()
    listen = " ".join(str(p) for p in sorted(ports - {22}))
    unit = (
        "[Unit]\nDescription=Data Fabric service simulator (m7guard test fixture)\n"
        "After=network.target\n\n[Service]\n"
        f"ExecStart=/usr/bin/python3 {SIM_DIR}/service_simulator.py {listen}\n"
        "Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    lab.ssh(host, f"mkdir -p {SIM_DIR} && cat > {SIM_DIR}/service_simulator.py "
                  f"<<'SIM_EOF'\n{script}SIM_EOF\n"
                  f"cat > /etc/systemd/system/{SIM_UNIT} <<'UNIT_EOF'\n{unit}UNIT_EOF\n"
                  f"systemctl daemon-reload && systemctl enable {SIM_UNIT} >/dev/null 2>&1 && "
                  f"systemctl restart {SIM_UNIT}")
    # listening before returning: every port shows up in ss
    check = " && ".join(f"ss -Htln 'sport = :{p}' | grep -q ." for p in sorted(ports - {22}))
    lab.ssh(host, f"for i in $(seq 50); do {{ {check}; }} && exit 0; sleep 0.1; done; exit 1")


def ruleset_checksum(lab: LabHandle, host: str) -> str:
    """sha256 of the whole live ruleset without counters ("no-nft" when nft is missing)."""
    proc = lab.ssh(host, "if command -v nft >/dev/null; then nft -s list ruleset | sha256sum;"
                         " else echo no-nft; fi")
    return proc.stdout.split()[0]


def differences(declared: dict[Cell, bool], measured: dict[Cell, str]) -> list[str]:
    return sorted(
        f"{s} -> {h} IPv{f} tcp/{p}: declared {'open' if want else 'closed'}, measured {got}"
        for (s, h, f, p), want in declared.items()
        for got in [measured[(s, h, f, p)]]
        if want != (got == "open")
    )


def render_matrix(declared: dict[Cell, bool], measured: dict[Cell, str]) -> str:
    """The open ports per source and node (IPv4/IPv6), for logs and the closing note."""
    rows: dict[tuple[str, str], dict[int, set[int]]] = {}
    for (s, h, f, p), got in measured.items():
        if got == "open":
            rows.setdefault((s, h), {}).setdefault(p, set()).add(f)
    lines = []
    for (s, h) in sorted({(s, h) for (s, h, _f, _p) in declared}):
        opened = rows.get((s, h), {})
        text = ", ".join(
            f"{p}" + ("" if fams == {4, 6} else f" (IPv{min(fams)} only)")
            for p, fams in sorted(opened.items())
        )
        lines.append(f"{s:>10} -> {h}: {text or 'nothing'}")
    return "\n".join(lines)


def wait_for_ssh(lab: LabHandle, host: str, seconds: float) -> float:
    """Seconds until `host` answers SSH again; fails after `seconds`."""
    started = time.monotonic()
    while True:
        try:
            if lab.ssh(host, "true", check=False, timeout=15).returncode == 0:
                return time.monotonic() - started
        except subprocess.TimeoutExpired:
            pass
        assert time.monotonic() - started < seconds, f"{host}: no SSH after {seconds:.0f} s"
        time.sleep(1)


def remove_simulator(lab: LabHandle, host: str) -> None:
    lab.ssh(host, f"systemctl disable --now {SIM_UNIT} >/dev/null 2>&1; "
                  f"rm -f /etc/systemd/system/{SIM_UNIT}; systemctl daemon-reload", check=False)
