"""Ansible inventories as `ansible-playbook -i` takes them, for every m7guard command.

One function, `load_inventory`, reads one or more sources with Ansible's own inventory code
(InventoryManager, DataLoader, VariableManager): an inventory file (YAML, INI, TOML), a
directory (every inventory file in it, with `group_vars/` and `host_vars/` beside them), an
inventory plugin configuration file (e.g. `*.aws_ec2.yml` for `amazon.aws.aws_ec2`), a
script, or a host list (`host1,host2,`). Several sources are merged in the order given, as
with repeated `-i`.

Ansible only warns about a source it cannot read and goes on with what is left; m7guard
refuses instead, naming the source, so an audit never silently covers fewer hosts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml

from m7guard.errors import M7guardError

if TYPE_CHECKING:
    from ansible.inventory.host import Host
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

PLUGIN_PACKAGES = {"amazon.aws": "pip install 'm7guard[aws]' (the ansible package ships it)"}
"""How to install the collection of an inventory plugin that a configuration names."""

Sources = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
F = TypeVar("F", bound=Callable[..., Any])


class InventoryError(M7guardError):
    """An inventory source cannot be read, or holds no host."""


def as_sources(value: Sources) -> tuple[str, ...]:
    """The sources as a tuple of strings: one path, one host list, or several of them."""
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def is_host_list(source: str) -> bool:
    """`host1,host2,` (Ansible's host_list plugin), as opposed to a path."""
    return "," in source and not os.path.exists(source)


def describe(sources: Sources) -> str:
    """The sources for a message or a results file: `a` or `a, b`."""
    return ", ".join(as_sources(sources))


def inventory_option(help_text: str) -> Callable[[F], F]:
    """The `-i/--inventory` option of every command that reads an inventory (repeatable)."""
    return click.option(
        "-i",
        "--inventory",
        "inventory",
        required=True,
        multiple=True,
        metavar="SOURCE",
        help=help_text + " As ansible-playbook takes it: a file, a directory (with group_vars "
        "beside the hosts), an inventory plugin configuration (e.g. *.aws_ec2.yml) or a host "
        "list; repeat -i to merge several.",
    )


@dataclass
class Inventory:
    """A parsed inventory, with the variables each host gets (group_vars, host_vars,
    precedence) exactly as a play would."""

    sources: tuple[str, ...]
    loader: DataLoader
    manager: InventoryManager
    variables: VariableManager

    def __str__(self) -> str:
        return describe(self.sources)

    def hosts(self, pattern: str | None = None) -> list[Host]:
        """The hosts matching an Ansible pattern (`--limit`), in inventory order."""
        return list(self.manager.get_hosts(pattern or "all"))

    def host_vars(self, host: Host) -> dict[str, Any]:
        """A host's variables before templating (inventory, group_vars, host_vars)."""
        return dict(self.variables.get_vars(host=host, include_hostvars=False))

    def groups_of(self, host: Host) -> list[str]:
        return sorted(g.name for g in host.get_groups() if g.name != "all")

    def listing(self) -> dict[str, Any]:
        """What `ansible-inventory --list` prints for these sources, as JSON data, taken from
        this parse: InventoryCLI.json_inventory's groups and each host's variables (all
        stages, without Ansible's internal ones), with the `__ansible_unsafe` marks
        ansible-core 2.19 writes around plugin-made values removed (testinfra expects
        ansible_host to be a string). tests/unit/inventory compares it with the command's."""
        from ansible import constants as C
        from ansible._internal._json._profiles import _inventory_legacy

        seen: set[str] = set()

        def group_of(group: Any, available: frozenset[str]) -> dict[str, Any]:
            out: dict[str, Any] = {group.name: {}}
            entry = out[group.name]
            if group.name != "all":
                entry["hosts"] = [h.name for h in group.hosts if h.name in available]
            entry["children"] = []
            for sub in group.child_groups:
                entry["children"].append(sub.name)
                if sub.name not in seen:
                    out.update(group_of(sub, available))
                    seen.add(sub.name)
            for key in ("hosts", "vars", "children"):
                if key in entry and not entry[key]:
                    del entry[key]
            if not entry:
                del out[group.name]
            return out

        hosts = self.manager.get_hosts("all")
        result = group_of(self.manager.groups["all"], frozenset(h.name for h in hosts))
        result["_meta"] = {"hostvars": {}, "profile": _inventory_legacy.Encoder.profile_name}
        for host in hosts:
            found = self.variables.get_vars(host=host, include_hostvars=False, stage="all")
            for internal in C.INTERNAL_STATIC_VARS:
                found.pop(internal, None)
            if found:
                result["_meta"]["hostvars"][host.name] = found
        text = json.dumps(result, cls=_inventory_legacy.Encoder, sort_keys=True)
        return json.loads(text, object_hook=_plain)  # type: ignore[no-any-return]

    def environment(self, work: Path, base: dict[str, str]) -> dict[str, str]:
        """`base` changed so that `ansible-inventory` (and so testinfra's ansible backend)
        reads these same sources: ANSIBLE_INVENTORY holds their absolute paths, comma
        separated (a host list is written to a file in `work` first, as its commas would
        split it), and PATH finds `ansible-inventory` in `work` first (_SHIM): for `--list`
        alone, the form testinfra runs, it prints this parse's listing (work/inventory.json)
        instead of reading the sources again in a new process; any other form runs the real
        command, its `--list` output unwrapped as `listing` does."""
        paths = []
        for n, source in enumerate(self.sources):
            if is_host_list(source):
                listed = work / f"hosts-{n}.yml"
                hosts = {h.strip(): None for h in source.split(",") if h.strip()}
                listed.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
                paths.append(str(listed))
            else:
                path = os.path.abspath(source)
                if "," in path:
                    raise InventoryError(f"inventory {source}: a path with a comma cannot be "
                                         "passed on to ansible-inventory; rename it")
                paths.append(path)
        path = base.get("PATH", os.defpath)
        real = shutil.which("ansible-inventory", path=path)
        if real is None:
            raise InventoryError("ansible-inventory not found: install ansible-core")
        listing = work / "inventory.json"
        listing.write_text(json.dumps(self.listing(), indent=1, sort_keys=True))
        bindir = work / "inventory-bin"
        bindir.mkdir(exist_ok=True)
        shim = bindir / "ansible-inventory"
        shim.write_text(_SHIM.format(python=sys.executable, real=real, listing=str(listing)))
        shim.chmod(0o755)
        return {**base, "ANSIBLE_INVENTORY": ",".join(paths),
                "PATH": os.pathsep.join([str(bindir), path])}


def _plain(d: dict[str, Any]) -> Any:
    """{"__ansible_unsafe": value} -> value (ansible-core 2.19's mark of a plugin-made value)."""
    return d["__ansible_unsafe"] if list(d) == ["__ansible_unsafe"] else d


_SHIM = """#!{python}
# ansible-inventory as m7guard's checks read it. `--list` alone (what testinfra runs) prints
# the listing the audit made from its own parse of the same sources (Inventory.listing);
# anything else runs the real command. ansible-core 2.19 writes a value that an inventory
# plugin made (an EC2 instance's address, say) as {{"__ansible_unsafe": value}}, a mark of
# where it came from; testinfra takes hostvars as they are and expects ansible_host to be a
# string, so a --list of the real command is printed with those marks removed.
import sys

if sys.argv[1:] == ["--list"]:
    with open({listing!r}, "rb") as fh:
        sys.stdout.buffer.write(fh.read())
    sys.exit(0)

import json
import subprocess

proc = subprocess.run([{real!r}, *sys.argv[1:]], stdout=subprocess.PIPE, check=False)
if proc.returncode != 0 or "--list" not in sys.argv:
    sys.stdout.buffer.write(proc.stdout)
    sys.exit(proc.returncode)


def plain(d):
    return d["__ansible_unsafe"] if list(d) == ["__ansible_unsafe"] else d


json.dump(json.loads(proc.stdout, object_hook=plain), sys.stdout, indent=1, sort_keys=True)
"""


def _check_exists(source: str) -> None:
    if not source.strip():
        raise InventoryError("inventory '': an empty source")
    if is_host_list(source):
        return
    if not os.path.exists(source):
        raise InventoryError(f"inventory {source} not found (no such file or directory)")
    if not os.access(source, os.R_OK):
        raise InventoryError(f"inventory {source}: not readable (permissions)")


def _plugin_named(source: str) -> str | None:
    """The `plugin:` an inventory plugin configuration file names, if it is one."""
    if not os.path.isfile(source) or not source.endswith((".yml", ".yaml")):
        return None
    try:
        with open(source, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    plugin = doc.get("plugin") if isinstance(doc, dict) else None
    return plugin if isinstance(plugin, str) else None


def _why_unparsed(source: str) -> str:
    from ansible import constants as C
    from ansible.plugins.loader import inventory_loader

    plugin = _plugin_named(source)
    if plugin and not inventory_loader.has_plugin(plugin):
        collection = ".".join(plugin.split(".")[:2])
        hint = PLUGIN_PACKAGES.get(collection, f"install the collection {collection}")
        return f"it is a configuration of the inventory plugin {plugin}, which is not " \
               f"installed: {hint}"
    if plugin:
        return f"the inventory plugin {plugin} could not read it (its error is printed above)"
    kind = "directory holds no file that" if os.path.isdir(source) else "file is not one that"
    return f"the {kind} an enabled inventory plugin ({', '.join(C.INVENTORY_ENABLED)}) can " \
           "read; the plugins' own errors are printed above"


def _init_collections() -> None:
    """Let Ansible find collections (an inventory plugin such as amazon.aws.aws_ec2), as its
    own command lines do at start-up; once per process, as Ansible allows."""
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader()


def load_inventory(sources: Sources) -> Inventory:
    """Parse the sources the way `ansible-playbook -i S1 -i S2 ...` does.

    Raises InventoryError, naming the source, when a source does not exist, no plugin can
    read it, Ansible fails on it, or the inventory ends up without any host.
    """
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    _init_collections()
    wanted = as_sources(sources)
    if not wanted:
        raise InventoryError("no inventory given: pass -i PATH")
    for source in wanted:
        _check_exists(source)

    class _Manager(InventoryManager):  # type: ignore[misc]
        """Records which of the given sources no plugin could read."""

        def __init__(self, loader: DataLoader, sources: list[str]) -> None:
            self.unparsed: list[str] = []
            self._depth = 0
            super().__init__(loader=loader, sources=sources)

        def parse_source(self, source: str, cache: bool = False) -> bool:
            self._depth += 1
            try:
                parsed = bool(super().parse_source(source, cache=cache))
            finally:
                self._depth -= 1
            if not parsed and self._depth == 0:
                self.unparsed.append(source)
            return parsed

    loader = DataLoader()
    try:
        manager = _Manager(loader, list(wanted))
    except AnsibleError as exc:
        raise InventoryError(f"inventory {describe(wanted)}: {exc}") from exc
    except Exception as exc:  # a plugin may raise anything
        raise InventoryError(f"inventory {describe(wanted)}: {exc}") from exc
    for unparsed in manager.unparsed:
        given = _given(unparsed, wanted)
        raise InventoryError(f"inventory {given}: cannot be read as an Ansible inventory: "
                             f"{_why_unparsed(given)}")
    if not manager.hosts:
        raise InventoryError(f"inventory {describe(wanted)}: no host in it")
    return Inventory(wanted, loader, manager, VariableManager(loader=loader, inventory=manager))


def _given(parsed: str, wanted: Iterable[str]) -> str:
    """The source as the user wrote it (Ansible makes paths absolute before parsing)."""
    for source in wanted:
        if is_host_list(source):
            if source == parsed:
                return source
        elif os.path.abspath(source) == os.path.abspath(parsed):
            return source
    return parsed
