"""MIT Kerberos client configuration (krb5.conf profile format), keytab listings and JAAS files.

Only what the kerberos_mfa checks need: relations of [libdefaults] and each realm, MIT's
boolean and duration formats and defaults, `klist -k -e` output, and the entries of a JAAS
login configuration (mapr.login.conf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TRUE = frozenset({"y", "yes", "true", "t", "1", "on"})
FALSE = frozenset({"n", "no", "false", "nil", "0", "off"})
# MIT defaults (krb5.conf(5), release 1.20) for the relations the checks judge.
DEFAULTS = {
    "dns_lookup_kdc": "true",
    "dns_lookup_realm": "false",
    "dns_canonicalize_hostname": "true",
    "rdns": "true",
    "allow_weak_crypto": "false",
    "ticket_lifetime": "1d",
    "renew_lifetime": "0",
}
_DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


@dataclass
class Profile:
    libdefaults: dict[str, list[str]] = field(default_factory=dict)
    realms: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)

    def value(self, key: str) -> str | None:
        """The first value of a [libdefaults] relation, or MIT's default."""
        values = self.libdefaults.get(key)
        return values[0] if values else DEFAULTS.get(key)

    def explicit(self, key: str) -> bool:
        return key in self.libdefaults


def parse_profile(text: str, profile: Profile | None = None) -> Profile:
    """Parse one krb5.conf file into `profile` (later files add to earlier ones)."""
    prof = profile or Profile()
    section = ""
    stack: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith(("include ", "includedir ")):
            prof.includes.append(line)
            continue
        if line.startswith("[") and line.endswith("]"):
            section, stack = line[1:-1].strip().lower(), []
            continue
        if line.startswith("}"):
            if stack:
                stack.pop()
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip().rstrip("*").strip()
        if value == "{":
            stack.append(key)
            continue
        if section == "libdefaults" and not stack:
            prof.libdefaults.setdefault(key.lower(), []).append(value)
        elif section == "realms" and len(stack) == 1:
            prof.realms.setdefault(stack[0], {}).setdefault(key.lower(), []).append(value)
    return prof


def boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    return None


def duration(value: str | None) -> int | None:
    """An MIT duration (36000, 10h, 7d, 1d2h30m, 10:00, 10:00:00) in seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    if text.isdigit():
        return int(text)
    if re.fullmatch(r"\d+:\d{2}(:\d{2})?", text):
        parts = [int(p) for p in text.split(":")] + [0]
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    match = _DURATION.match(text)
    if not text or match is None:
        return None
    d, h, m, s = (int(x) if x else 0 for x in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


def enctypes(value: str | None) -> list[str]:
    return [e for e in re.split(r"[\s,]+", value or "") if e]


@dataclass(frozen=True)
class KeytabEntry:
    kvno: str
    principal: str
    enctype: str


def parse_klist(text: str) -> list[KeytabEntry]:
    """`klist -k -e` output (with or without -t timestamps)."""
    entries = []
    for line in text.splitlines():
        match = re.match(r"^\s*(\d+)\s+(?:\S+\s+\S+\s+)?(\S+@\S+)\s+\(([^)]+)\)", line)
        if match:
            entries.append(KeytabEntry(*match.groups()))
    return entries


# --- JAAS --------------------------------------------------------------------------------

_JAAS_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_JAAS_ENTRY = re.compile(r"([A-Za-z0-9_.\-]+)\s*\{(.*?)\}\s*;", re.DOTALL)
_JAAS_OPTION = re.compile(r'([A-Za-z0-9_.\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]+)')


@dataclass(frozen=True)
class JaasModule:
    cls: str
    flag: str
    options: dict[str, str]


def parse_jaas(text: str) -> dict[str, list[JaasModule]]:
    """Entries of a JAAS login configuration: name to its login modules, in order."""
    entries: dict[str, list[JaasModule]] = {}
    for name, body in _JAAS_ENTRY.findall(_JAAS_COMMENT.sub("", text)):
        modules = []
        for part in body.split(";"):
            words = part.split(None, 2)
            if len(words) < 2:
                continue
            options = {
                k: v.strip('"') for k, v in _JAAS_OPTION.findall(words[2] if len(words) > 2 else "")
            }
            modules.append(JaasModule(words[0], words[1].lower(), options))
        entries[name] = modules
    return entries
