"""The intended configuration of every host: inventory variables merged over role defaults.

Read with Ansible's own inventory and variable machinery (group_vars, host_vars, precedence)
and templated with its own engine, so preflight sees what a play would see, without
contacting any host. Which roles apply to a host comes from the plays of a playbook.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from m7guard.errors import M7guardError
from m7guard.inventory import InventoryError, Sources, load_inventory
from m7guard.locate import COLLECTION


class IntendedConfigError(M7guardError):
    """The inventory or a playbook could not be read."""


_PASSTHROUGH = frozenset({"hostvars", "vars", "groups", "group_names"})

UNRESOLVED = object()
"""Marker for a value that cannot be known before the play runs (facts, vault without key)."""


@dataclass
class HostIntent:
    name: str
    groups: list[str]
    roles: list[str]
    variables: dict[str, Any] = field(repr=False)
    unresolved: set[str] = field(default_factory=set)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    """The untemplated values of the unresolved variables (e.g. `{{ vault_x }}`)."""

    def get(self, name: str, default: Any = None) -> Any:
        value = self.variables.get(name, default)
        return default if value is UNRESOLVED else value

    def has(self, name: str) -> bool:
        return name in self.variables and self.variables[name] is not UNRESOLVED


@dataclass
class PlaybookPlay:
    hosts: str
    roles: list[str]


def role_dir_name(name: str) -> str:
    """A role of the m7guard.hardening collection by its directory name (roles/<name>): the
    playbooks name it m7guard.hardening.<name>; any other name is kept as written."""
    prefix = ".".join(COLLECTION) + "."
    return name[len(prefix):] if name.startswith(prefix) else name


def plays_of(playbook: Path) -> list[PlaybookPlay]:
    """The (hosts, roles) of each play, following import_playbook."""
    try:
        doc = yaml.safe_load(playbook.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise IntendedConfigError(f"{playbook}: cannot read the playbook: {exc}") from exc
    plays: list[PlaybookPlay] = []
    for entry in doc or []:
        if not isinstance(entry, dict):
            continue
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if imported:
            plays += plays_of((playbook.parent / str(imported)).resolve())
            continue
        roles = []
        for role in entry.get("roles") or []:
            name = role if isinstance(role, str) else role.get("role") or role.get("name")
            roles.append(role_dir_name(str(name)))
        plays.append(PlaybookPlay(hosts=str(entry.get("hosts", "all")), roles=roles))
    return plays


class IntendedConfig:
    """Per-host intended variables for an inventory, and the roles each host receives."""

    def __init__(self, inventory: Sources, playbook: Path, roles_dir: Path,
                 limit: str | None = None, extra_vars: list[str] | None = None) -> None:
        try:
            self.parsed = load_inventory(inventory)
        except InventoryError as exc:
            raise IntendedConfigError(str(exc)) from exc
        self.loader = self.parsed.loader
        self.inventory = self.parsed.manager
        self.variables = self.parsed.variables
        self.extra = self._extra_vars(extra_vars or [])
        self.roles_dir = roles_dir
        self.plays = plays_of(playbook)
        self.limit = limit

    def _extra_vars(self, specs: list[str]) -> dict[str, Any]:
        """`-e` values as ansible-playbook takes them: @FILE (YAML/JSON) or key=value."""
        extra: dict[str, Any] = {}
        for spec in specs:
            if spec.startswith("@"):
                path = Path(spec[1:])
                if not path.exists():
                    raise IntendedConfigError(f"-e {spec}: no such file")
                data = self.loader.load_from_file(str(path))
                if not isinstance(data, dict):
                    raise IntendedConfigError(f"-e {spec}: not a mapping of variables")
                extra.update(data)
            elif "=" in spec:
                key, value = spec.split("=", 1)
                extra[key] = value
            else:
                raise IntendedConfigError(f"-e {spec!r}: use @FILE or key=value")
        return extra

    def role_defaults(self, role: str) -> dict[str, Any]:
        path = self.roles_dir / role / "defaults" / "main.yml"
        if not path.exists():
            return {}
        data = self.loader.load_from_file(str(path))
        return dict(data or {})

    def hosts(self) -> Iterator[HostIntent]:
        from ansible.template import Templar

        pattern = self.limit or "all"
        for host in self.inventory.get_hosts(pattern):
            hv = self.variables.get_vars(host=host, include_hostvars=False)
            roles: list[str] = []
            for play in self.plays:
                names = {h.name for h in self.inventory.get_hosts(play.hosts)}
                if host.name in names:
                    roles += [r for r in play.roles if r not in roles]
            merged: dict[str, Any] = {}
            for role in roles:
                merged.update(self.role_defaults(role))
            merged.update(hv)
            merged.update(self.extra)
            templar = Templar(loader=self.loader, variables=merged)
            resolved: dict[str, Any] = {}
            unresolved: set[str] = set()
            raw: dict[str, Any] = {}
            for key, value in merged.items():
                if key in _PASSTHROUGH or key.startswith("ansible_"):
                    resolved[key] = value
                    continue
                try:
                    resolved[key] = _plain(templar.template(value))
                except Exception:  # a fact, a vaulted value without its key, a lookup
                    resolved[key] = UNRESOLVED
                    unresolved.add(key)
                    raw[key] = _raw(value)
            groups = sorted(g.name for g in host.get_groups() if g.name != "all")
            yield HostIntent(host.name, groups, roles, resolved, unresolved, raw)


def _raw(value: Any) -> Any:
    """A value as written, with vault-encrypted leaves shown as `<vaulted>`."""
    if isinstance(value, dict):
        return {str(k): _raw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_raw(v) for v in value]
    if type(value).__name__ in ("EncryptedString", "AnsibleVaultEncryptedUnicode"):
        return "<vaulted>"
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def _plain(value: Any) -> Any:
    """Ansible's tagged str/list/dict subclasses as plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def detect_controller_address(hosts: list[HostIntent]) -> str | None:
    """The source address this machine would use towards the first host (no packet is sent:
    a UDP socket's connect only asks the kernel for a route)."""
    for host in hosts:
        target = host.get("ansible_host") or host.name
        try:
            infos = socket.getaddrinfo(str(target), 22, proto=socket.IPPROTO_UDP)
        except OSError:
            continue
        for family, _, _, _, addr in infos:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.connect(addr)
                except OSError:
                    continue
                return str(sock.getsockname()[0])
    return None
