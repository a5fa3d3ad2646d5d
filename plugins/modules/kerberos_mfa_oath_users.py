#!/usr/bin/python
"""Ansible module: keep the TOTP enrolments in pam_oath's users file."""

from __future__ import annotations

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kerberos_mfa_oath_users
short_description: Manage the TOTP enrolments of pam_oath's users file
version_added: "0.1.0"
description:
  - Writes one C(HOTP/T30/<digits> <user> - <hex secret>) line per user to the users file
    of pam_oath, root-owned with mode 0600.
  - pam_oath appends the last accepted code and its time to a user's line after each login
    (that is how it refuses a replayed code). The module keeps those fields while the
    user's secret is unchanged, so a second run changes nothing and replay protection
    survives.
  - Users not listed are removed. Secrets never appear in the module's output or diff.
options:
  path:
    description: The users file.
    type: path
    default: /etc/users.oath
  users:
    description: Enrolled users, login name to hex TOTP secret (never logged).
    type: dict
    required: true
  digits:
    description: Length of a one-time code.
    type: int
    default: 6
author: m7guard
"""

EXAMPLES = r"""
- name: Enrol the administrators
  kerberos_mfa_oath_users:
    users:
      alice: "{{ vault_alice_totp_hex }}"
  no_log: true
"""

RETURN = r"""
enrolled:
  description: Names of the enrolled users, in file order.
  type: list
  elements: str
  returned: always
"""


HEX = re.compile(r"^(?:[0-9A-Fa-f]{2}){16,64}$")
NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def render(current: str, users: dict[str, str], digits: int) -> str:
    """The new file: one line per user, keeping pam_oath's state fields of unchanged users."""
    kind = f"HOTP/T30/{digits}"
    kept: dict[str, tuple[list[str], str]] = {}
    for line in current.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#"):
            kept.setdefault(fields[1], (fields, line))
    lines = ["# Managed by m7guard (kerberos_mfa): TOTP enrolments for pam_oath."]
    for name, secret in users.items():
        secret = str(secret).lower()
        old, text = kept.get(name, ([], ""))
        if old and old[0] == kind and old[2] == "-" and old[3].lower() == secret:
            lines.append(text)
        else:
            lines.append(f"{kind} {name} - {secret}")
    return "\n".join(lines) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/users.oath"},
            "users": {"type": "dict", "required": True, "no_log": True},
            "digits": {"type": "int", "default": 6, "choices": [6, 7, 8]},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    users = {str(k): str(v) for k, v in module.params["users"].items()}
    names = list(users)
    bad = [name for name, secret in users.items() if not HEX.match(secret)]
    bad += [name for name in names if not NAME.match(name)]
    if bad:
        module.fail_json(
            msg=f"users: invalid name or secret (32 to 128 hex digits) for {', '.join(bad)}"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except FileNotFoundError:
        current = ""
    wanted = render(current, users, module.params["digits"])
    changed = wanted != current
    fixed_mode = False
    if not changed:
        st = os.stat(path)
        fixed_mode = (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (0o600, 0, 0)
        if fixed_mode and not module.check_mode:
            os.chown(path, 0, 0)
            os.chmod(path, 0o600)
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".users.oath.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(wanted)
            os.chown(tmp, 0, 0)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            module.fail_json(msg=f"cannot write {path}: {exc}")
    result = {"changed": changed or fixed_mode, "enrolled": names}
    if module._diff and changed:
        result["diff"] = {"before": f"{path}: enrolments changed", "after": ", ".join(names)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
