"""sshd's effective configuration, per connection: who may log in, how, from where.

The checks never parse sshd_config for values: they ask sshd itself (`sshd -T`), globally
and for connection contexts (`sshd -T -C user=U,host=A,addr=A`), so Match blocks, Include
files and defaults are applied exactly as sshd applies them. The config files are read only
to find which users and addresses Match blocks name, so that each of them is evaluated.
The addresses are only strings handed to `sshd -T`; nothing connects to them.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

SSHD = "/usr/sbin/sshd"
CONFIG_FILES = "/etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf"
# Documentation ranges (RFC 5737, RFC 3849): an address outside every real network.
OUTSIDE = ("192.0.2.10", "2001:db8::10")
PROBE_USER = "m7guard-probe"
_TIME = re.compile(r"(\d+)([smhdwSMHDW]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_settings(text: str) -> dict[str, list[str]]:
    """`sshd -T` output: keyword (lower case) to its values, one per output line."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            settings.setdefault(key.lower(), []).append(value.strip())
    return settings


def seconds(value: str) -> int | None:
    """sshd's time format (900, 15m, 1h30m) in seconds; None if it is not one."""
    value = value.strip()
    if not value or _TIME.sub("", value):
        return None
    return sum(int(n) * _UNITS[u.lower()] for n, u in _TIME.findall(value))


@dataclass
class Context:
    """sshd's settings for one connection (user from address), or globally (user None)."""

    user: str | None
    address: str | None
    settings: dict[str, list[str]] = field(default_factory=dict)
    host: str | None = None
    laddr: str | None = None
    lport: int | None = None
    rdomain: str | None = None
    raw: str = ""

    def get(self, key: str, default: str = "") -> str:
        values = self.settings.get(key, [])
        return values[0] if values else default

    def methods(self) -> list[list[str]] | None:
        """AuthenticationMethods as lists of steps; None when any single method will do."""
        value = self.get("authenticationmethods", "any")
        if value == "any":
            return None
        return [entry.split(",") for entry in value.split()]

    def needs_second_factor(self) -> bool:
        """Every way in ends in keyboard-interactive through PAM (which asks for the code)."""
        methods = self.methods()
        return (
            methods is not None
            and all(any(step.startswith("keyboard-interactive") for step in m) for m in methods)
            and self.get("kbdinteractiveauthentication") == "yes"
            and self.get("usepam") == "yes"
        )

    def key_only(self) -> bool:
        methods = self.methods()
        return methods == [["publickey"]] and self.get("passwordauthentication") == "no"

    def label(self) -> str:
        if not self.user:
            return "global"
        where = f"{self.user} from {self.address}"
        if self.host:
            where += f" (host {self.host})"
        if self.laddr:
            where += f" to {self.laddr}"
        if self.lport is not None:
            where += f" on port {self.lport}"
        if self.rdomain:
            where += f" in rdomain {self.rdomain}"
        return where


# Match criteria `sshd -T -C` can be given a value for (all needs none).
MATCH_CRITERIA = ("all", "user", "group", "host", "address", "localaddress", "localport",
                  "rdomain")
# An address outside every real network that sshd listens on: the local end of a probe.
OUTSIDE_LOCAL = ("192.0.2.20", "2001:db8::20")


@dataclass
class MatchTargets:
    """Everything the Match blocks of the config files name, so each can be evaluated."""

    users: set[str] = field(default_factory=set)
    user_patterns: set[str] = field(default_factory=set)
    group_patterns: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    local_addresses: set[str] = field(default_factory=set)
    local_ports: set[int] = field(default_factory=set)
    rdomains: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    includes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _wild(value: str) -> bool:
    return any(c in value for c in "*?")


def parse_match(config_text: str) -> MatchTargets:
    """The users, groups, addresses, hosts and local ends that Match lines name, the ports
    sshd listens on, and the Include patterns; a criterion that cannot be handed to
    `sshd -T -C` (or a line that cannot be read) is listed in `unknown`."""
    found = MatchTargets()
    for number, raw in enumerate(config_text.splitlines(), start=1):
        try:
            words = shlex.split(raw, comments=True) if raw.strip() else []
        except ValueError:
            if raw.strip().lower().startswith("match"):
                found.unknown.append(f"cannot read the Match line {raw.strip()[:80]!r}")
            continue
        if not words:
            continue
        keyword = words[0].lower()
        if keyword == "include":
            found.includes.extend(words[1:])
        elif keyword == "port":
            found.ports.update(int(w) for w in words[1:] if w.isdigit())
        elif keyword == "listenaddress" and words[1:]:
            port = re.search(r"(?:^\[.*\]|^[^:]*):(\d+)$", words[1])
            if port:
                found.ports.add(int(port.group(1)))
        if keyword != "match":
            continue
        rest = words[1:]
        while rest:
            key = rest.pop(0).lower()
            if key == "all":
                continue
            if key not in MATCH_CRITERIA or not rest:
                found.unknown.append(
                    f"Match criterion {key!r} (line {number}: {raw.strip()[:80]}) cannot be "
                    "evaluated with sshd -T -C"
                )
                break
            items = [v for v in rest.pop(0).split(",") if v and not v.startswith("!")]
            if key == "user":
                found.users.update(v for v in items if not _wild(v))
                found.user_patterns.update(v for v in items if _wild(v))
            elif key == "group":
                found.group_patterns.update(items)
            elif key == "address":
                found.addresses.update(items)
            elif key == "host":
                found.hosts.update(items)
            elif key == "localaddress":
                found.local_addresses.update(items)
            elif key == "localport":
                for item in items:
                    if item.isdigit():
                        found.local_ports.add(int(item))
                    else:
                        found.unknown.append(f"Match LocalPort {item!r} is not a port")
            elif key == "rdomain":
                found.rdomains.update(items)
    return found


def match_targets(config_text: str) -> tuple[set[str], set[str]]:
    """Users (without wildcards) and address patterns named by `Match` lines."""
    found = parse_match(config_text)
    return found.users, found.addresses


def stand_in(pattern: str) -> str:
    """A name that an sshd wildcard pattern matches (`svc-*` -> `svc-m7g`)."""
    return pattern.replace("*", "m7g").replace("?", "x")


def representative(pattern: str) -> str | None:
    """An address inside an sshd address pattern (CIDR or wildcard), or None."""
    pattern = pattern.strip()
    try:
        net = ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        candidate = pattern.replace("*", "1").replace("?", "1")
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return None
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net.network_address + 1)


def in_networks(address: str, networks: Iterable[str]) -> bool:
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True)
class Probe:
    """One connection to ask sshd about: `sshd -T -C` with these values."""

    user: str
    address: str
    host: str = ""
    laddr: str = ""
    lport: int | None = None
    rdomain: str = ""

    def spec(self) -> str:
        parts = [f"user={self.user}", f"host={self.host or self.address}",
                 f"addr={self.address}"]
        if self.laddr:
            parts.append(f"laddr={self.laddr}")
        if self.lport is not None:
            parts.append(f"lport={self.lport}")
        if self.rdomain:
            parts.append(f"rdomain={self.rdomain}")
        return ",".join(parts)


def probes(
    users: Iterable[str], addresses: Iterable[str], targets: MatchTargets | None = None
) -> list[Probe]:
    """Every combination of user, remote end and local end worth asking sshd about."""
    t = targets or MatchTargets()
    remote = [(a, "") for a in sorted(set(addresses))]
    remote += [(OUTSIDE[0], stand_in(h)) for h in sorted(t.hosts)]
    lports: list[int | None] = sorted(t.ports | t.local_ports) or [None]
    if t.local_ports and not t.ports:
        lports = sorted({22} | t.local_ports)
    laddrs = [""]
    if t.local_addresses:
        laddrs = sorted({a for p in t.local_addresses if (a := representative(p))}
                        | set(OUTSIDE_LOCAL))
    rdomains = ["", *sorted(t.rdomains)] if t.rdomains else [""]
    return [
        Probe(user, addr, host, laddr, lport, rdomain)
        for user in sorted(set(users))
        for addr, host in remote
        for laddr in laddrs
        for lport in lports
        for rdomain in rdomains
    ]


def context_script(
    users: Iterable[str], addresses: Iterable[str], marker: str,
    targets: MatchTargets | None = None,
) -> str:
    """Shell script printing `sshd -T` globally and for each probe (see probes())."""
    lines = [f"echo '{marker} global'; {SSHD} -T 2>&1"]
    for probe in probes(users, addresses, targets):
        head = " ".join([probe.user, probe.address, probe.host or "-", probe.laddr or "-",
                         str(probe.lport) if probe.lport is not None else "-",
                         probe.rdomain or "-"])
        lines.append(
            f"echo '{marker} ctx {head}'; {SSHD} -T -C {shlex.quote(probe.spec())} 2>&1"
        )
    lines.append(f"echo '{marker} end'")
    return "\n".join(lines)


def parse_contexts(out: str, marker: str) -> list[Context]:
    contexts: list[Context] = []
    body: list[str] = []
    head: list[str] | None = None
    for line in [*out.splitlines(), f"{marker} end"]:
        if line.startswith(marker + " "):
            if head is not None:
                ctx = Context(None, None, parse_settings("\n".join(body)))
                if head[0] == "ctx":
                    extra = [None if v == "-" else v for v in head[3:7]]
                    extra += [None] * (4 - len(extra))
                    ctx = Context(head[1], head[2], ctx.settings, extra[0], extra[1],
                                  int(extra[2]) if extra[2] else None, extra[3])
                    ctx.raw = "\n".join(body)[-300:]
                contexts.append(ctx)
            head, body = line[len(marker) + 1 :].split(), []
            if head[0] == "end":
                break
        else:
            body.append(line)
    return contexts


def timeout_for(channel_timeout: str, channel: str) -> int | None:
    """Seconds after which an idle channel of type `channel` is closed (None: never)."""
    for pair in channel_timeout.split():
        kind, _, interval = pair.partition("=")
        if fnmatch.fnmatchcase(channel, kind):
            value = seconds(interval)
            return value if value else None
    return None
