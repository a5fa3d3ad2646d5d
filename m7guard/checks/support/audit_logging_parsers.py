"""Parsers used by the AUD-* checks (m7guard/checks/audit_logging.py).

Pure functions over text read from a host, so they are unit-tested without one: kernel audit
rules as written in /etc/audit/audit.rules and as `auditctl -l` prints them, auditd.conf,
journald's merged configuration, rsyslog forwarding actions, chrony's sources and an AIDE
report. (The leading underscore keeps this module out of the check collection.)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

# auditctl prints `unset` (and 4294967295) as -1.
_UNSET = {"unset", "-1", "4294967295"}
_FIELD = re.compile(r"^([A-Za-z0-9_]+)(!=|>=|<=|&=|=|>|<|&)(.*)$")
_SWAP = {"=": "=", "!=": "!=", ">": "<", "<": ">", ">=": "<=", "<=": ">="}


@dataclass(frozen=True)
class AuditRule:
    """One kernel audit rule in a form that compares equal however auditctl printed it."""

    kind: str  # "watch" or "syscall"
    action: frozenset[str] = frozenset()
    syscalls: frozenset[str] = frozenset()
    fields: frozenset[tuple[str, str, str]] = frozenset()
    comparisons: frozenset[tuple[str, str, str]] = frozenset()
    path: str = ""
    perms: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    text: str = field(default="", compare=False, hash=False)


def _field(token: str) -> tuple[str, str, str]:
    m = _FIELD.match(token)
    if not m:
        raise ValueError(f"not a rule field: {token!r}")
    name, op, value = m.groups()
    if name in ("auid", "uid", "euid", "suid", "fsuid", "loginuid") and value in _UNSET:
        value = "-1"
    return name, op, value


def _comparison(token: str) -> tuple[str, str, str]:
    left, op, right = _field(token)
    if (left, right) != tuple(sorted((left, right))):
        left, right, op = right, left, _SWAP.get(op, op)
    return left, op, right


def parse_rule(line: str) -> AuditRule | None:
    """A rule from one line of a rules file or of `auditctl -l`; None for anything else
    (comments, -D, -b, -f, -e, --backlog_wait_time, "No rules")."""
    text = line.strip()
    if not text.startswith(("-a ", "-A ", "-w ")):
        return None
    tokens = shlex.split(text)
    if tokens[0] == "-w":
        path, perms, keys = tokens[1], frozenset("rwxa"), set()
        i = 2
        while i < len(tokens):
            opt = tokens[i]
            value = tokens[i + 1] if i + 1 < len(tokens) else ""
            if opt == "-p":
                perms = frozenset(value)
            elif opt == "-k":
                keys.add(value)
            elif opt == "-F" and value.startswith("key="):
                keys.add(value[4:])
            i += 2
        return AuditRule("watch", path=path.rstrip("/") or "/", perms=perms,
                         keys=frozenset(keys), text=text)
    action = frozenset(tokens[1].split(","))
    syscalls: set[str] = set()
    fields: set[tuple[str, str, str]] = set()
    comparisons: set[tuple[str, str, str]] = set()
    keys: set[str] = set()
    i = 2
    while i < len(tokens):
        opt = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        if opt == "-S":
            syscalls.update(s for s in value.split(",") if s and s != "all")
        elif opt == "-k":
            keys.add(value)
        elif opt == "-F":
            name, op, val = _field(value)
            if name == "key":
                keys.add(val)
            else:
                fields.add((name, op, val))
        elif opt == "-C":
            comparisons.add(_comparison(value))
        i += 2
    return AuditRule("syscall", action=action, syscalls=frozenset(syscalls),
                     fields=frozenset(fields), comparisons=frozenset(comparisons),
                     keys=frozenset(keys), text=text)


def parse_rules(text: str) -> list[AuditRule]:
    return [r for r in (parse_rule(line) for line in text.splitlines()) if r is not None]


def rule_keys(rules: Iterable[AuditRule]) -> set[str]:
    return {k for r in rules for k in r.keys}


def parse_status(text: str) -> dict[str, str]:
    """`auditctl -s` as a mapping (enabled, pid, lost, ...)."""
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def parse_key_values(text: str) -> dict[str, str]:
    """`key = value` lines (auditd.conf): keys lower-case, comments and blanks skipped."""
    out = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if "=" in line:
            key, value = line.split("=", 1)
            out[key.strip().lower()] = value.strip()
    return out


def parse_unit_config(text: str, section: str) -> dict[str, str]:
    """One section of a systemd configuration as `systemd-analyze cat-config` prints it
    (files in precedence order, later assignments win)."""
    out: dict[str, str] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Forward:
    target: str
    port: int
    protocol: str
    source: str


_ACTION = re.compile(r"action\s*\((.*?)\)", re.DOTALL)
_PARAM = re.compile(r'([A-Za-z0-9_.]+)\s*=\s*"([^"]*)"')
_LEGACY = re.compile(r"^\s*[^#\s]+\s+(@@?)(\(o\))?\[?([^\]\s:]+)\]?(?::(\d+))?\s*$")


def parse_forwards(files: dict[str, str]) -> list[Forward]:
    """rsyslog forwarding actions (omfwd, and the legacy `@host` / `@@host` forms)."""
    found = []
    for path, text in files.items():
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
        body = "\n".join(lines)
        for m in _ACTION.finditer(body):
            params = {k.lower(): v for k, v in _PARAM.findall(m.group(1))}
            if params.get("type", "").lower() != "omfwd":
                continue
            found.append(Forward(params.get("target", ""), int(params.get("port", "514")),
                                 params.get("protocol", "udp").lower(), path))
        for line in lines:
            lm = _LEGACY.match(line)
            if lm:
                proto = "tcp" if lm.group(1) == "@@" else "udp"
                found.append(Forward(lm.group(3), int(lm.group(4) or 514), proto, path))
    return found


def parse_time_sources(files: dict[str, str]) -> list[str]:
    """server, pool and peer lines of chrony's configuration files."""
    out = []
    for text in files.values():
        for raw in text.splitlines():
            words = raw.split("#", 1)[0].split()
            if len(words) >= 2 and words[0] in ("server", "pool", "peer"):
                out.append(f"{words[0]} {words[1]}")
    return out


def parse_tracking(text: str) -> dict[str, str]:
    """`chronyc -n tracking` as a mapping (Reference ID, Leap status, System time, ...)."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def selected_sources(sources_text: str) -> list[str]:
    """Sources chrony synchronises to (`^*`) or combines with (`^+`): `chronyc -n sources`."""
    out = []
    for line in sources_text.splitlines():
        if len(line) > 3 and line[0] in "^=#" and line[1] in "*+":
            out.append(line.split()[1])
    return out


_AIDE_COUNT = re.compile(r"^\s*(Added|Removed|Changed) entries:\s*(\d+)", re.MULTILINE)
_AIDE_ENTRY = re.compile(r"^[fdlcbps?][ <>=.+!:-]{1,}\S*\s*:\s*(/\S.*)$", re.MULTILINE)


def aide_summary(report: str) -> dict[str, object]:
    """Counts and the first paths of an `aide --check` report."""
    counts = {k.lower(): int(v) for k, v in _AIDE_COUNT.findall(report)}
    return {**counts, "paths": _AIDE_ENTRY.findall(report)[:20]}
