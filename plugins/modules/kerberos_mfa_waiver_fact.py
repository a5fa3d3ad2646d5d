#!/usr/bin/python
"""Ansible module: record a role's accepted exceptions in m7guard's host waiver fact."""

from __future__ import annotations

import json
import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kerberos_mfa_waiver_fact
short_description: Keep a role's waivers in /etc/ansible/facts.d/m7guard_waivers.fact
version_added: "0.1.0"
description:
  - >-
    m7guard audit reads waivers a role recorded on a host from a JSON local fact,
    C({"waivers": [{rule, justification, expires, approver, ticket}]}), and reports the
    waived rules as C(waived) with that justification.
  - Several roles may record waivers in the same file. This module replaces the entries of
    the rules it is given (C(rules)) and keeps every other entry as it is.
options:
  path:
    description: The fact file.
    type: path
    default: /etc/ansible/facts.d/m7guard_waivers.fact
  rules:
    description: Rule ids whose entries this call owns (removed when not in C(waivers)).
    type: list
    elements: str
    required: true
  waivers:
    description: Waivers to record; each names one of C(rules).
    type: list
    elements: dict
    default: []
author: m7guard
"""

EXAMPLES = r"""
- name: The automation account's exemption from MFA is a waiver of IDN-011
  kerberos_mfa_waiver_fact:
    rules: [IDN-011]
    waivers:
      - rule: IDN-011
        justification: Ansible cannot answer a one-time code; key-only from the admin network.
        expires: "2026-06-30"
        approver: security-officer@example.com
"""

RETURN = r"""
waivers:
  description: The entries this call recorded.
  type: list
  elements: dict
  returned: always
"""


FIELDS = ("rule", "justification", "expires", "approver", "ticket")


def merge(current: str, rules: list[str], waivers: list[dict]) -> tuple[str, list[str]]:
    """New file content: other rules' entries kept, ours replaced. Also returns warnings."""
    warnings = []
    others: list = []
    if current.strip():
        try:
            data = json.loads(current)
            others = [
                w
                for w in data.get("waivers", [])
                if not (isinstance(w, dict) and w.get("rule") in rules)
            ]
        except (ValueError, AttributeError):
            warnings.append("the existing waiver fact was not valid JSON; it was replaced")
    ours = [{k: str(w[k]) for k in FIELDS if w.get(k) not in (None, "")} for w in waivers]
    return json.dumps({"waivers": others + ours}, indent=2, sort_keys=True) + "\n", warnings


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/ansible/facts.d/m7guard_waivers.fact"},
            "rules": {"type": "list", "elements": "str", "required": True},
            "waivers": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    path, rules, waivers = (module.params[k] for k in ("path", "rules", "waivers"))
    for i, waiver in enumerate(waivers):
        missing = [k for k in ("rule", "justification", "expires", "approver") if not waiver.get(k)]
        if missing:
            module.fail_json(msg=f"waivers[{i}]: missing {', '.join(missing)}")
        if waiver["rule"] not in rules:
            module.fail_json(msg=f"waivers[{i}]: rule {waiver['rule']} is not one of {rules}")
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except FileNotFoundError:
        current = ""
    new, warnings = merge(current, rules, waivers)
    changed = new != current
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        tmp = f"{path}.m7guard-tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(new)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    for text in warnings:
        module.warn(text)
    result = {"changed": changed, "waivers": json.loads(new)["waivers"]}
    if changed and module._diff:
        result["diff"] = {
            "before": current,
            "after": new,
            "before_header": path,
            "after_header": path,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
