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
        return f"{self.user} from {self.address}" if self.user else "global"


def match_targets(config_text: str) -> tuple[set[str], set[str]]:
    """Users and address patterns named by `Match` lines of the config files."""
    users: set[str] = set()
    addresses: set[str] = set()
    for raw in config_text.splitlines():
        words = shlex.split(raw, comments=True) if raw.strip() else []
        if not words or words[0].lower() != "match":
            continue
        pairs = words[1:]
        for key, value in zip(pairs[::2], pairs[1::2], strict=False):
            items = [v for v in value.split(",") if v and not v.startswith("!")]
            if key.lower() == "user":
                users.update(v for v in items if not any(c in v for c in "*?"))
            elif key.lower() == "address":
                addresses.update(items)
    return users, addresses


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


def context_script(users: Iterable[str], addresses: Iterable[str], marker: str) -> str:
    """Shell script printing `sshd -T` globally and for each user and address."""
    lines = [f"echo '{marker} global'; {SSHD} -T 2>&1"]
    for user in sorted(set(users)):
        for addr in sorted(set(addresses)):
            spec = shlex.quote(f"user={user},host={addr},addr={addr}")
            lines.append(f"echo '{marker} ctx {user} {addr}'; {SSHD} -T -C {spec} 2>&1")
    lines.append(f"echo '{marker} end'")
    return "\n".join(lines)


def parse_contexts(out: str, marker: str) -> list[Context]:
    contexts: list[Context] = []
    body: list[str] = []
    head: list[str] | None = None
    for line in [*out.splitlines(), f"{marker} end"]:
        if line.startswith(marker + " "):
            if head is not None:
                user = head[1] if head[0] == "ctx" else None
                addr = head[2] if head[0] == "ctx" else None
                contexts.append(Context(user, addr, parse_settings("\n".join(body))))
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
