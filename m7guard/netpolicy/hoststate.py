"""A host's firewall state, read in one round trip: what the NET-* checks look at.

`GATHER_SCRIPT` runs with the host's python3 (every Ansible-managed host has one) and prints
one JSON document: the live ruleset (`nft -j list ruleset`), the persisted one
(/etc/nftables.conf loaded into a scratch network namespace, so it is parsed exactly like
the live one and nothing on the host changes), nftables.service's state, the listening
sockets (`ss -Htuln`), the declaration zero_trust_network writes
(/etc/ansible/facts.d/zero_trust_network.fact) and the MFS whitelist of a MapR node.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from m7guard.netpolicy.addrset import AddrSet, Family
from m7guard.netpolicy.nftables import Ruleset, RulesetError

DECLARATION = "/etc/ansible/facts.d/zero_trust_network.fact"
PERSISTED = "/etc/nftables.conf"
MFS_CONF = "/opt/mapr/conf/mfs.conf"

GATHER_SCRIPT = f"""
import json, os, shutil, subprocess
def run(args):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return {{"rc": None, "out": "", "err": str(exc)[:300]}}
    return {{"rc": p.returncode, "out": p.stdout, "err": p.stderr[-300:]}}
def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1000000)
    except OSError:
        return None
nft = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft")
                                   if os.path.exists(p)), None)
out = {{"nft": nft}}
if nft:
    out["live"] = run([nft, "-j", "list", "ruleset"])
    if os.path.exists({PERSISTED!r}):
        out["persisted"] = run(["unshare", "--net", "sh", "-c",
                                nft + " -f {PERSISTED} && " + nft + " -j list ruleset"])
out["persisted_exists"] = os.path.exists({PERSISTED!r})
out["enabled"] = run(["systemctl", "is-enabled", "nftables.service"])["out"].strip()
out["active"] = run(["systemctl", "is-active", "nftables.service"])["out"].strip()
out["ss"] = run(["ss", "-Htuln"])
out["declaration"] = read({DECLARATION!r})
out["mfs_conf"] = read({MFS_CONF!r})
print(json.dumps(out))
"""


def gather_command() -> str:
    return "python3 -c " + shlex.quote(GATHER_SCRIPT)


@dataclass
class Socket:
    proto: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        host = self.address.split("%", 1)
        if len(host) == 2 and host[1] == "lo":
            return True
        try:
            return ipaddress.ip_address(host[0].strip("[]")).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{self.proto}/{self.port} on {self.address}"


class SocketListError(ValueError):
    """`ss` printed a line that is not a listening socket as `ss -Htuln` prints one."""


def parse_ss(text: str) -> list[Socket]:
    """Listening TCP and bound UDP sockets from `ss -Htuln`; a line in another form raises
    SocketListError (a socket the parser skipped would be a socket the check never sees)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) < 5 or cols[0] not in ("tcp", "udp"):
            raise SocketListError(f"unexpected line from ss -Htuln: {line.strip()[:120]!r}")
        host, _, port = cols[4].rpartition(":")
        if not host or not port.isdigit():
            raise SocketListError(f"unexpected local address from ss -Htuln: {cols[4][:80]!r}")
        out.append(Socket(cols[0], host, int(port)))
    return out


def _sockets(result: dict[str, Any] | None) -> tuple[list[Socket] | None, str]:
    """The sockets `ss -Htuln` listed, or None and why they are unknown."""
    if not result:
        return None, "ss -Htuln was not run"
    if result.get("rc") != 0:
        why = (result.get("err") or "").strip() or f"exit {result.get('rc')}"
        return None, f"ss -Htuln failed: {why}"
    try:
        return parse_ss(result.get("out") or ""), ""
    except SocketListError as exc:
        return None, str(exc)


@dataclass
class Declaration:
    """What zero_trust_network declared on the host: zones and the services it runs."""

    zones: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    egress_policy: str = ""
    log_prefix: str = ""
    present: bool = False

    @classmethod
    def parse(cls, text: str | None) -> Declaration:
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return cls()
        return cls(
            zones=data.get("zones") or {},
            services=data.get("services") or {},
            egress_policy=str(data.get("egress_policy", "")),
            log_prefix=str(data.get("log_prefix", "")),
            present=True,
        )

    def networks(self, zones: list[str] | tuple[str, ...], family: Family) -> AddrSet:
        key = "ipv4" if family == 4 else "ipv6"
        nets = [n for z in zones for n in self.zones.get(z, {}).get(key, [])]
        return AddrSet.of(family, nets)

    def ports(self, proto: str) -> set[int]:
        """Every port of a declared service for `proto` (tcp or udp)."""
        found: set[int] = set()
        for spec in self.services.values():
            if spec.get("protocol", "tcp") not in (proto, "both"):
                continue
            for text in spec.get("ports", []):
                lo, _, hi = str(text).partition("-")
                found.update(range(int(lo), int(hi or lo) + 1))
        return found


@dataclass
class NetState:
    nft: str | None
    live: Ruleset | None
    live_error: str
    live_doc: dict[str, Any] | None
    persisted_doc: dict[str, Any] | None
    persisted_error: str
    persisted_exists: bool
    enabled: str
    active: str
    sockets: list[Socket] | None
    declaration: Declaration
    mfs_conf: str | None
    sockets_error: str = ""
    zone_evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NetState:
        data = json.loads(text)
        live_doc, live_error, live = None, "", None
        if data.get("nft"):
            live_doc, live_error = _load(data.get("live"))
            if live_doc is not None:
                try:
                    live = Ruleset(live_doc)
                except RulesetError as exc:
                    live_error = str(exc)
        else:
            live_error = "nftables is not installed (no nft command)"
        persisted_doc, persisted_error = None, ""
        if not data.get("persisted_exists"):
            persisted_error = f"{PERSISTED} does not exist"
        elif data.get("persisted") is not None:
            persisted_doc, persisted_error = _load(data["persisted"])
        else:
            persisted_error = "nftables is not installed (no nft command)"
        sockets, sockets_error = _sockets(data.get("ss"))
        return cls(
            nft=data.get("nft"),
            live=live,
            live_error=live_error,
            live_doc=live_doc,
            persisted_doc=persisted_doc,
            persisted_error=persisted_error,
            persisted_exists=bool(data.get("persisted_exists")),
            enabled=data.get("enabled", ""),
            active=data.get("active", ""),
            sockets=sockets,
            declaration=Declaration.parse(data.get("declaration")),
            mfs_conf=data.get("mfs_conf"),
            sockets_error=sockets_error,
        )

    def ruleset(self) -> Ruleset:
        """The live ruleset; an empty one (everything accepted) when nft is missing."""
        return self.live if self.live is not None else Ruleset({"nftables": []})


def _load(result: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    if not result:
        return None, "not read"
    if result.get("rc") != 0:
        return None, (result.get("err") or "").strip() or f"exit {result.get('rc')}"
    try:
        text = result.get("out") or ""
        return (json.loads(text) if text.strip() else {"nftables": []}), ""
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"


def firewall_tables(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """Tables that filter (a base filter chain, and rules or a drop policy), normalized for
    comparison: handles, counter values and the metainfo dropped, objects in listing order.
    Empty tables with accept policies (what `ufw disable` leaves) filter nothing."""
    objects = [o for o in doc.get("nftables", []) if isinstance(o, dict) and "metainfo" not in o]
    with_rules = {(o["rule"]["family"], o["rule"]["table"]) for o in objects if "rule" in o}
    firewall = {
        (c["chain"]["family"], c["chain"]["table"])
        for c in objects
        if "chain" in c and c["chain"].get("type") == "filter" and c["chain"].get("hook")
        and (c["chain"].get("policy") == "drop"
             or (c["chain"]["family"], c["chain"]["table"]) in with_rules)
    }
    out: dict[str, list[Any]] = {}
    for obj in objects:
        kind, body = next(iter(obj.items()))
        if not isinstance(body, dict):
            continue
        key = (body.get("family"), body.get("table") if kind != "table" else body.get("name"))
        if key in firewall:
            out.setdefault(f"{key[0]} {key[1]}", []).append({kind: _normalize(body)})
    return out


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (None if k == "counter" else _normalize(v))
            for k, v in value.items()
            if k != "handle"
        }
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value
