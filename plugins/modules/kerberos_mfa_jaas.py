#!/usr/bin/python
"""Ansible module: make named entries of a JAAS login configuration file what they should be."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kerberos_mfa_jaas
short_description: Manage entries of a JAAS login configuration (mapr.login.conf)
version_added: "0.1.0"
description:
  - Parses a JAAS login configuration file (C(Name { class flag key=value ...; };)) and makes
    each listed entry consist of exactly the given login modules. Entries it does not list,
    comments and formatting elsewhere in the file are kept as they are.
  - An entry that differs only in whitespace, comments or option order is left alone, so a
    second run changes nothing. A missing entry is appended.
  - The file keeps its owner and mode.
options:
  path:
    description: The JAAS file.
    type: path
    required: true
  entries:
    description: >-
      Entry name to its login modules, each a dict with C(class), C(flag)
      (required, requisite, sufficient, optional) and C(options) (key to value).
    type: dict
    required: true
author: m7guard
"""

EXAMPLES = r"""
- name: MapR's password login uses its own PAM service
  kerberos_mfa_jaas:
    path: /opt/mapr/conf/mapr.login.conf
    entries:
      jpamLogin:
        - class: net.sf.jpam.jaas.JpamLoginModule
          flag: required
          options: {serviceName: mapr-admin}
"""

RETURN = r"""
updated:
  description: Names of the entries that were replaced or added.
  type: list
  elements: str
  returned: always
"""


FLAGS = ("required", "requisite", "sufficient", "optional")
_TOKEN = re.compile(
    r'(?P<space>\s+)|(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<punct>[{};=])|(?P<word>[^\s{};=\"]+)",
    re.DOTALL,
)

Module = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass
class Entry:
    name: str
    start: int
    end: int
    modules: list[Module]


class JaasError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    out = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise JaasError(f"unexpected character at offset {pos}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            out.append((kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return out


def _value(token: tuple[str, str, int, int]) -> str:
    kind, text = token[0], token[1]
    return text[1:-1].replace('\\"', '"') if kind == "string" else text


def parse(text: str) -> list[Entry]:
    """Entries of a JAAS file with their character spans."""
    toks = _tokens(text)
    entries: list[Entry] = []
    i = 0

    def expect(value: str) -> None:
        nonlocal i
        if i >= len(toks) or toks[i][1] != value:
            found = toks[i][1] if i < len(toks) else "end of file"
            raise JaasError(f"expected {value!r}, found {found!r}")
        i += 1

    while i < len(toks):
        name_tok = toks[i]
        if name_tok[0] != "word":
            raise JaasError(f"expected an entry name, found {name_tok[1]!r}")
        i += 1
        expect("{")
        modules: list[Module] = []
        while i < len(toks) and toks[i][1] != "}":
            if i + 1 >= len(toks):
                raise JaasError(f"entry {name_tok[1]} is not closed")
            cls, flag = toks[i][1], toks[i + 1][1]
            i += 2
            options: list[tuple[str, str]] = []
            while i < len(toks) and toks[i][1] != ";":
                if i + 2 >= len(toks) or toks[i + 1][1] != "=":
                    raise JaasError(f"bad option in entry {name_tok[1]}")
                options.append((toks[i][1], _value(toks[i + 2])))
                i += 3
            expect(";")
            modules.append((cls, flag.lower(), tuple(sorted(options))))
        expect("}")
        end = toks[i - 1][3]
        if i < len(toks) and toks[i][1] == ";":
            end = toks[i][3]
            i += 1
        entries.append(Entry(name_tok[1], name_tok[2], end, modules))
    return entries


def wanted_modules(spec: list[dict]) -> list[Module]:
    modules = []
    for item in spec:
        flag = str(item.get("flag", "required")).lower()
        if flag not in FLAGS or not item.get("class"):
            raise JaasError(f"each module needs a class and one of the flags {', '.join(FLAGS)}")
        options = tuple(sorted((str(k), str(v)) for k, v in (item.get("options") or {}).items()))
        modules.append((str(item["class"]), flag, options))
    return modules


def render(name: str, modules: list[Module]) -> str:
    lines = [f"{name} {{"]
    for cls, flag, options in modules:
        parts = [f"  {cls} {flag}"]
        parts += [f'    {key}="{value}"' for key, value in options]
        lines.append("\n".join(parts) + ";")
    lines.append("};")
    return "\n".join(lines)


def apply(text: str, wanted: dict[str, list[Module]]) -> tuple[str, list[str]]:
    """The new file text and the names of the entries that changed."""
    entries = parse(text)
    updated = []
    out = text
    for entry in sorted(entries, key=lambda e: e.start, reverse=True):
        if entry.name in wanted and entry.modules != wanted[entry.name]:
            out = out[: entry.start] + render(entry.name, wanted[entry.name]) + out[entry.end :]
            updated.append(entry.name)
    present = {e.name for e in entries}
    for name, modules in wanted.items():
        if name not in present:
            out = out.rstrip("\n") + ("\n\n" if out.strip() else "") + render(name, modules) + "\n"
            updated.append(name)
    return out, sorted(updated)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "entries": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read {path}: {exc}")
    try:
        wanted = {str(k): wanted_modules(v) for k, v in module.params["entries"].items()}
        new, updated = apply(current, wanted)
    except JaasError as exc:
        module.fail_json(msg=f"{path}: {exc}")
    result = {"changed": bool(updated), "updated": updated}
    if updated and module._diff:
        result["diff"] = {
            "before": current,
            "after": new,
            "before_header": path,
            "after_header": path,
        }
    if updated and not module.check_mode:
        tmp = f"{path}.m7guard-tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(new)
        module.atomic_move(tmp, path)
        if os.path.exists(tmp):
            os.unlink(tmp)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
