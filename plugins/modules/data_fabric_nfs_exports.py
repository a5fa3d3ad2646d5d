#!/usr/bin/python
"""Restrict a Data Fabric NFSv3 gateway's exports to the declared client networks."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: data_fabric_nfs_exports
short_description: Restrict a Data Fabric NFSv3 gateway's exports to declared client networks
version_added: "0.1.0"
description:
  - The NFSv3 gateway of Data Fabric has no authentication and no encryption; the file
    C(/opt/mapr/conf/exports) decides which hosts may mount what, and as shipped it exports
    C(/mapr (rw)), to every host.
  - On a node with the gateway (C(/opt/mapr/roles/nfs)), every export line keeps only the
    clients within I(clients) (networks); an access given to every host (a C((rw)) or
    C((ro)) without hosts) becomes the same access for each declared network. A line left
    with no client is commented out, which stops that export (C(exports) reference page).
    Comments and other lines stay byte for byte.
  - >-
    With I(clients) empty nothing is exported over NFSv3; with I(clients) unset (the default
    of the role) a gateway that has exports is refused, naming data_fabric_nfs_clients.
  - >-
    After a change the gateway rereads the file (C(maprcli nfsmgmt refreshexports)); when
    that fails the file is put back and the module fails.
  - Refuses, changing nothing, a line whose access control cannot be read, a client that is
    a host name (names resolve differently on the node and the controller), and a client
    network that is not a network. Reads before it writes; works in check mode and diff.
  - The functions above run() are what m7guard's DF-008 check uses.
options:
  path:
    description: The exports file.
    type: str
    default: /opt/mapr/conf/exports
  role_file:
    description: The file that marks a node with the NFSv3 gateway.
    type: str
    default: /opt/mapr/roles/nfs
  clients:
    description: >-
      Networks (or addresses) that may mount; an empty list exports nothing. Unset, the
      module refuses a gateway that has exports.
    type: list
    elements: str
  maprcli:
    description: The maprcli command, which tells the gateway to reread its exports.
    type: str
    default: /opt/mapr/bin/maprcli
"""

RETURN = r"""
gateway:
  description: Whether the node has the NFSv3 gateway.
  type: bool
  returned: always
changes:
  description: One line per export changed (line number, before, after).
  type: list
  returned: always
"""

MARK = "# m7guard DF-008, not exported (no declared client): "
_ENTRY = re.compile(r"([^\s()]*)\(([^)]*)\)")
_CLDBS = re.compile(r"^[^\s(),:]+:\d+(,[^\s(),:]+:\d+)*$")


class ExportsError(Exception):
    """An exports line or a declared client that cannot be read."""


@dataclass
class Export:
    lineno: int
    path: str
    cldbs: str  # the CLDB list of a non-/mapr export, "" for /mapr paths
    entries: list[tuple[list[str], str]]  # (hosts, options); no hosts: every other host
    alias: str = ""  # the name a /mapr path is exported under, when the line gives one


def control(text: str, where: str) -> list[tuple[list[str], str]]:
    """The (hosts, options) groups of an access control: `a,b(ro) c(rw) (rw)`; a group
    without hosts grants every host not named before it."""
    entries, rest = [], text
    for match in _ENTRY.finditer(text):
        hosts = [h for h in match.group(1).split(",") if h]
        entries.append((hosts, match.group(2).strip()))
        rest = rest.replace(match.group(0), " ", 1)
    if rest.replace(",", " ").strip() or not entries:
        raise ExportsError(f"{where}: access control {text.strip()!r} cannot be read: each "
                           "host takes (rw) or (ro), a default for every host is (rw) or (ro) "
                           "alone")
    return entries


def exports(text: str, path: str = "exports") -> list[Export]:
    """The export lines of an exports file (comments and blank lines left out)."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        fields = body.split(None, 1)
        where = f"{path} line {lineno}"
        if len(fields) < 2:
            raise ExportsError(f"{where}: {fields[0]} has no access control")
        cldbs, alias, rest = "", "", fields[1]
        if not fields[0].startswith("/mapr"):  # <Path> <cldb host:port,...> <control>
            parts = rest.split(None, 1)
            if len(parts) < 2 or not _CLDBS.match(parts[0]):
                raise ExportsError(f"{where}: {fields[0]} is not followed by a CLDB list "
                                   "(host:port,...) and an access control")
            cldbs, rest = parts
        elif rest.startswith("/"):  # <Path> <alias> <control>
            alias, _, rest = rest.partition(" ")
        out.append(Export(lineno, fields[0], cldbs, control(rest, where), alias))
    return out


def networks(values: Any, variable: str = "data_fabric_nfs_clients"
             ) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    if not isinstance(values, list):
        raise ExportsError(f"{variable} must be a list of networks, not {values!r:.100}")
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ExportsError(f"{variable}: {value!r} is not a network") from None
    return out


def within(host: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
           ) -> bool | None:
    """Whether a client (an address or a network) lies within one of the networks; None for
    a name, which cannot be judged here."""
    try:
        net = ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None
    return any(net.version == a.version and net.subnet_of(a) for a in allowed)


def _render(entries: list[tuple[list[str], str]]) -> str:
    return " ".join(f"{','.join(hosts)}({opts})" for hosts, opts in entries)


def restrict(text: str, allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
             path: str = "exports"
             ) -> tuple[str, list[dict[str, Any]]]:
    """The file with every export restricted to the allowed networks; the changes made."""
    lines = text.splitlines(keepends=True)
    changes = []
    for export in exports(text, path):
        new: list[tuple[list[str], str]] = []
        for hosts, opts in export.entries:
            if not hosts:
                new.append(([str(a) for a in allowed], opts))
                continue
            judged = {h: within(h, allowed) for h in hosts}
            names = [h for h, ok in judged.items() if ok is None]
            if names:
                raise ExportsError(f"{path} line {export.lineno}: {names[0]} is a host name; "
                                   "name the clients by address or network")
            new.append(([h for h in hosts if judged[h]], opts))
        new = [(hosts, opts) for hosts, opts in new if hosts]
        if new == export.entries:
            continue
        old = lines[export.lineno - 1]
        ending = old[len(old.rstrip("\r\n")):]
        if new:
            prefix = " ".join(p for p in (export.path, export.alias, export.cldbs) if p)
            line = f"{prefix} {_render(new)}{ending}"
        else:
            line = f"{MARK}{old.rstrip(chr(13) + chr(10))}{ending}"
        lines[export.lineno - 1] = line
        changes.append({"line": export.lineno, "before": old.rstrip("\r\n"),
                        "after": line.rstrip("\r\n")})
    return "".join(lines), changes


def run(module: Any) -> None:
    # imported here, not at the top: the checks load this module's parsers without the collection
    from ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio import (
        replace_text,
    )
    params = module.params
    gateway = os.path.exists(params["role_file"])
    if not gateway:
        module.exit_json(changed=False, gateway=False, changes=[])
    path = params["path"]
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
        if params["clients"] is None:
            if exports(current, path):
                raise ExportsError(
                    "data_fabric_nfs_clients is not set: declare the networks that may mount "
                    "over NFSv3 (the gateway authenticates no client), or [] to export nothing")
            allowed = []
        else:
            allowed = networks(params["clients"])
        new, changes = restrict(current, allowed, path)
    except (OSError, UnicodeDecodeError, ExportsError) as exc:
        module.fail_json(msg=f"nothing was changed: {exc}", gateway=True, changes=[])
    result: dict[str, Any] = {"changed": bool(changes), "gateway": True, "changes": changes}
    if changes and module._diff:
        result["diff"] = {"before": current, "after": new, "before_header": path,
                          "after_header": path}
    if changes and not module.check_mode:
        replace_text(path, new)
        # The gateway rereads its exports on `maprcli nfsmgmt refreshexports` (ReferenceGuide:
        # nfsmgmt refreshexports); when it cannot, the file goes back as it was, so a next
        # run sees the change still to make.
        rc, out, err = module.run_command([params["maprcli"], "nfsmgmt", "refreshexports",
                                           "-json"])
        if rc != 0 or '"ERROR"' in out:
            replace_text(path, current)
            module.fail_json(msg="nothing was changed: maprcli nfsmgmt refreshexports failed "
                                 f"({(err or out).strip()[:300]}); {path} is as it was",
                             gateway=True, changes=[])
    module.exit_json(**result)


def main() -> None:
    run(AnsibleModule(
        argument_spec={
            "path": {"type": "str", "default": "/opt/mapr/conf/exports"},
            "role_file": {"type": "str", "default": "/opt/mapr/roles/nfs"},
            "clients": {"type": "list", "elements": "str"},
            "maprcli": {"type": "str", "default": "/opt/mapr/bin/maprcli"},
        },
        supports_check_mode=True,
    ))


if __name__ == "__main__":
    main()
