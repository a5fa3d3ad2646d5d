#!/usr/bin/python
"""Several systemd units enabled and running, read and changed in one call."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: m7guard_units
short_description: Several systemd units enabled and running, in one call
description:
  - Reads every unit of O(units) with one C(systemctl show), then enables those that are not
    enabled and starts those that are not active, each with one C(systemctl) command.
  - A unit systemd does not know is an error, reported before anything changes.
  - A static unit (no C([Install]) section) cannot be enabled; it only has to run.
  - >-
    One call instead of one per unit: on a node under software emulation every module call
    costs seconds.
  - Supports check mode and diff mode.
version_added: "0.1.0"
options:
  units:
    description: Unit names with their suffix (C(acct.service), C(apt-daily.timer)).
    type: list
    elements: str
    required: true
  daemon_reload:
    description: Run C(systemctl daemon-reload) first (a unit file changed).
    type: bool
    default: false
author: m7guard
"""

EXAMPLES = r"""
- name: Process accounting and sysstat run and start at boot
  m7guard_units:
    units: [acct.service, sysstat.service, sysstat-collect.timer]
"""

RETURN = r"""
enabled:
  description: Units that were (or would be) enabled.
  type: list
  returned: always
started:
  description: Units that were (or would be) started.
  type: list
  returned: always
"""

PROPERTIES = ("Id", "LoadState", "UnitFileState", "ActiveState")
# unit file states that start at boot or cannot be enabled (no [Install] section)
ENABLED = {"enabled", "static", "indirect", "generated", "alias"}


def parse_show(text):
    """`systemctl show -p ...` of several units: one dict per unit, in order."""
    units, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    if current:
        units.append(current)
    return units


def plan(names, shown):
    """(to enable, to start, problems) from the units' shown properties."""
    problems, enable, start = [], [], []
    if len(shown) != len(names):
        return [], [], [f"systemctl show gave {len(shown)} units for {len(names)}"]
    for index, name in enumerate(names):  # lengths checked above (no zip strict: Python 3.9)
        props = shown[index]
        if props.get("LoadState") != "loaded":
            problems.append(f"{name}: systemd does not know it ({props.get('LoadState')})")
            continue
        if props.get("UnitFileState") not in ENABLED:
            enable.append(name)
        if props.get("ActiveState") != "active":
            start.append(name)
    return enable, start, problems


def run(module):
    names = module.params["units"]
    systemctl = module.get_bin_path("systemctl", required=True)
    if module.params["daemon_reload"] and not module.check_mode:
        module.run_command([systemctl, "daemon-reload"], check_rc=True)
    props = ",".join(PROPERTIES)
    rc, out, err = module.run_command([systemctl, "show", "-p", props, "--", *names])
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip() or out.strip()}")
    enable, start, problems = plan(names, parse_show(out))
    if problems:
        module.fail_json(msg="; ".join(problems))
    if not module.check_mode:
        if enable:
            module.run_command([systemctl, "enable", "--", *enable], check_rc=True)
        if start:
            module.run_command([systemctl, "start", "--", *start], check_rc=True)
    result = {"changed": bool(enable or start), "enabled": enable, "started": start}
    if module._diff and (enable or start):
        result["diff"] = {
            "before": "".join(f"{n}: {'disabled' if n in enable else 'enabled'}, "
                              f"{'inactive' if n in start else 'active'}\n" for n in names),
            "after": "".join(f"{n}: enabled, active\n" for n in names),
            "before_header": "systemd units", "after_header": "systemd units",
        }
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "required": True},
            "daemon_reload": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
