#!/usr/bin/python
"""Remove clear-text key and trust store passwords from a Data Fabric node's Hadoop SSL files."""

from __future__ import annotations

import glob
import os
import re
import xml.etree.ElementTree as ET
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: data_fabric_ssl_passwords
short_description: No clear-text key or trust store password in a Data Fabric node's SSL files
version_added: "0.1.0"
description:
  - >-
    From release 7.0 Data Fabric keeps the key and trust store passwords of its Hadoop
    C(ssl-server.xml) and C(ssl-client.xml) in credential stores (Hadoop Credential
    Provider API: C(/opt/mapr/conf/maprkeycreds.*) and C(maprtrustcreds.*), JCEKS or
    BCFKS); a clear-text C(ssl.server|client.keystore|truststore.password|keypassword)
    value left in those files (an upgrade from 6.2, a copied file) is removed.
  - Refuses, changing nothing, when the credential stores that must then hold the passwords
    are missing (create them first with C(manageSSLKeys.sh createcreds)), or a file is not
    well-formed XML.
  - Keeps no backup (a backup would keep the password on disk) and shows no value in its
    diff or its result. Reads before it writes; works in check mode.
  - The function clear_text_passwords() is what m7guard's DF-007 check uses.
options:
  files:
    description: Glob patterns of the SSL configuration files.
    type: list
    elements: str
    required: true
  key_stores:
    description: Glob patterns of the key credential store; one at least must exist.
    type: list
    elements: str
    default: [/opt/mapr/conf/maprkeycreds.jceks, /opt/mapr/conf/maprkeycreds.bcfks]
  trust_stores:
    description: Glob patterns of the trust credential store; one at least must exist.
    type: list
    elements: str
    default: [/opt/mapr/conf/maprtrustcreds.jceks, /opt/mapr/conf/maprtrustcreds.bcfks]
"""

RETURN = r"""
files:
  description: The SSL configuration files found.
  type: list
  returned: always
removed:
  description: file -> the names of the properties removed (in check mode, that would be).
  type: dict
  returned: always
"""

PASSWORD_PROPERTY = re.compile(r"^ssl\.(server|client)\.(keystore|truststore)\.(key)?password$")
MASK = "********"


class SslConfigError(Exception):
    """A file that is not the Hadoop configuration XML it should be."""


_COMMENT = re.compile(r"[ \t]*<!--.*?-->[ \t]*\r?\n?", re.S)
# a property written out inside a comment: element form or attribute form
_IN_COMMENT = re.compile(r"<name>\s*([^<\s]+)\s*</name>\s*<value>([^<]*)</value>"
                         r"|\bname\s*=\s*\"([^\"]+)\"[^>]*?\bvalue\s*=\s*\"([^\"]*)\"", re.S)


def _properties(text: str, path: str) -> list[tuple[str, str]]:
    """(name, value) of every <property>: child elements (<name>, <value>, CDATA included) or
    attributes (<property name=".." value=".."/>), both of which Hadoop reads."""
    # The text comes from a node: no DTD, hence no entity to expand, is let through.
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.I):
        raise SslConfigError(f"{path} declares a DTD or entities, which Hadoop's "
                             "configuration files do not use: refused")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD, checked above
    except ET.ParseError as exc:
        raise SslConfigError(f"{path} is not well-formed XML: {exc}") from None
    if root.tag != "configuration":
        raise SslConfigError(f"{path}: the root element is <{root.tag}>, not <configuration>")
    out = []
    for prop in root.iter("property"):
        name = (prop.findtext("name") or prop.get("name") or "").strip()
        value = prop.findtext("value") if prop.find("value") is not None else prop.get("value")
        out.append((name, value or ""))
    return out


def secrets(text: str, path: str) -> list[tuple[str, str, bool]]:
    """(name, value, in a comment) of each key or trust store password written in the file:
    a property that holds a value, or one left inside an XML comment (still clear text on
    disk)."""
    out = [(name, value, False) for name, value in _properties(text, path)
           if PASSWORD_PROPERTY.match(name) and value.strip()]
    for comment in _COMMENT.finditer(text):
        for match in _IN_COMMENT.finditer(comment.group(0)):
            name = (match.group(1) or match.group(3) or "").strip()
            value = match.group(2) if match.group(1) else match.group(4)
            if PASSWORD_PROPERTY.match(name) and (value or "").strip():
                out.append((name, value, True))
    return out


def clear_text_passwords(text: str, path: str) -> list[str]:
    """The names of the key and trust store password properties that hold a value (marked
    when the property sits inside a comment)."""
    return sorted({name + (" (in a comment)" if commented else "")
                   for name, _, commented in secrets(text, path)})


def without(text: str, names: list[str], path: str) -> str:
    """The file without the <property> elements of those names and without the comments that
    hold a password, the rest byte for byte."""
    out = text
    for name in {n.removesuffix(" (in a comment)") for n in names}:
        quoted = re.escape(name)
        for block in (
                r"[ \t]*<property>(?:(?!</property>).)*?<name>\s*" + quoted
                + r"\s*</name>(?:(?!</property>).)*?</property>[ \t]*\r?\n?",
                r"[ \t]*<property\b[^>]*\bname\s*=\s*\"" + quoted + r"\"[^>]*/>[ \t]*\r?\n?"):
            out = re.sub(block, "", out, flags=re.S)
    out = _COMMENT.sub(lambda c: "" if any(
        PASSWORD_PROPERTY.match((m.group(1) or m.group(3) or "").strip())
        for m in _IN_COMMENT.finditer(c.group(0))) else c.group(0), out)
    if clear_text_passwords(out, path):
        raise SslConfigError(f"{path}: a password property could not be removed cleanly")
    return out


def masked(text: str, path: str) -> str:
    """The file with every password value masked wherever it appears (for the diff)."""
    out = text
    for _, value, _ in secrets(text, path):
        out = out.replace(value, MASK)
    return out


def found(patterns: list[str]) -> list[str]:
    return sorted({p for pattern in patterns for p in glob.glob(pattern) if os.path.isfile(p)})


ARGUMENT_SPEC = {
    "files": {"type": "list", "elements": "str", "required": True},
    "key_stores": {"type": "list", "elements": "str",
                   "default": ["/opt/mapr/conf/maprkeycreds.jceks",
                               "/opt/mapr/conf/maprkeycreds.bcfks"]},
    "trust_stores": {"type": "list", "elements": "str",
                     "default": ["/opt/mapr/conf/maprtrustcreds.jceks",
                                 "/opt/mapr/conf/maprtrustcreds.bcfks"]},
}


def run(module: Any) -> None:
    # imported here, not at the top: the checks load this module's parsers without the collection
    from ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio import (
        replace_text,
    )
    params = module.params
    files = found(params["files"])
    plans: dict[str, tuple[str, str, list[str]]] = {}
    try:
        for path in files:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            names = clear_text_passwords(text, path)
            if names:
                plans[path] = (text, without(text, names, path), names)
    except (OSError, UnicodeDecodeError, SslConfigError) as exc:
        module.fail_json(msg=f"nothing was changed: {exc}", files=files, removed={})
    removed = {path: names for path, (_, _, names) in plans.items()}
    if plans:
        missing = [kind for kind, patterns in (("key", params["key_stores"]),
                                               ("trust", params["trust_stores"]))
                   if not found(patterns)]
        if missing:
            where = "; ".join(f"{p}: {', '.join(n)}" for p, n in removed.items())
            module.fail_json(
                msg=(f"nothing was changed: clear-text passwords in {where}; and "
                     f"no {' or '.join(missing)} credential store to hold them instead "
                     f"({', '.join(params['key_stores'] + params['trust_stores'])}): create "
                     "them first (manageSSLKeys.sh createcreds), then run again"),
                files=files, removed={})
    result: dict[str, Any] = {"changed": bool(plans), "files": files, "removed": removed}
    if plans and module._diff:
        result["diff"] = [{"before": masked(before, path), "after": after,
                           "before_header": path, "after_header": path}
                          for path, (before, after, _) in plans.items()]
    if plans and not module.check_mode:
        for path, (_, after, _) in plans.items():
            replace_text(path, after)
    module.exit_json(**result)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True))


if __name__ == "__main__":
    main()
