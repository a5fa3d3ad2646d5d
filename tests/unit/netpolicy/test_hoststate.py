"""Parsing a host's firewall state: sockets, the declaration, persisted vs live tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from m7guard.netpolicy.hoststate import (
    GATHER_SCRIPT,
    Declaration,
    NetState,
    firewall_tables,
    parse_ss,
)

DATA = Path(__file__).parent / "data"

SS = """\
udp   UNCONN 0      0          127.0.0.1:323        0.0.0.0:*
udp   UNCONN 0      0      0.0.0.0%eth0:68          0.0.0.0:*
tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*
tcp   LISTEN 0      64                 *:7222             *:*
tcp   LISTEN 0      128             [::]:22            [::]:*
tcp   LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*
tcp   LISTEN 0      4096           [::1]:631           [::]:*
"""


def test_parse_ss_and_loopback() -> None:
    socks = parse_ss(SS)
    assert [(s.proto, s.port, s.loopback) for s in socks] == [
        ("udp", 323, True), ("udp", 68, False), ("tcp", 22, False), ("tcp", 7222, False),
        ("tcp", 22, False), ("tcp", 53, True), ("tcp", 631, True),
    ]


def test_declaration() -> None:
    decl = Declaration.parse(json.dumps({
        "zones": {"admin": {"ipv4": ["10.0.3.0/24"], "ipv6": ["fd00:3::/64"]}},
        "services": {"nfs": {"ports": ["111", "2049"], "protocol": "both", "zones": ["clients"]},
                     "metrics": {"ports": ["9400-9402"], "protocol": "udp", "zones": []}},
        "egress_policy": "accept",
    }))
    assert decl.present
    assert decl.ports("tcp") == {111, 2049}
    assert decl.ports("udp") == {111, 2049, 9400, 9401, 9402}
    assert decl.networks(("admin",), 6).cidrs() == ["fd00:3::/64"]
    assert not decl.networks(("clients",), 4)
    assert not Declaration.parse(None).present
    assert not Declaration.parse("{broken").present


def test_firewall_tables_ignore_handles_and_counters() -> None:
    doc = json.loads((DATA / "sample.json").read_text())
    tables = firewall_tables(doc)
    assert sorted(tables) == ["inet m7guard", "ip legacy"]
    bumped = json.loads(json.dumps(doc).replace('"handle": 1', '"handle": 99'))
    for obj in bumped["nftables"]:
        for expr in obj.get("rule", {}).get("expr", []):
            if "counter" in expr:
                expr["counter"] = {"packets": 12, "bytes": 3456}
    assert firewall_tables(bumped) == tables
    bumped["nftables"] = [o for o in bumped["nftables"]
                          if o.get("rule", {}).get("chain") != "svc"]
    assert firewall_tables(bumped) != tables


def test_gather_script_runs_and_parses_here(tmp_path: Path) -> None:
    """The script is valid Python and its output parses, whatever this machine has."""
    proc = subprocess.run([sys.executable, "-c", GATHER_SCRIPT], capture_output=True, text=True,
                          timeout=120, check=True)
    state = NetState.parse(proc.stdout)
    assert isinstance(state.sockets, list) or state.sockets_error
    assert state.live is not None or state.live_error
