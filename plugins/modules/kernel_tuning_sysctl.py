#!/usr/bin/python
"""Persist kernel parameters in one sysctl.d file and apply a chosen subset at run time."""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio import (
    read_text,
    write_atomic,
)

DOCUMENTATION = r"""
---
module: kernel_tuning_sysctl
short_description: Persist sysctl settings in one file and apply a subset at run time
description:
  - Writes every setting to one sysctl.d file (grouped under the rule ids it serves) and
    writes the running value (/proc/sys) of the keys listed in O(apply) that differ.
  - Keys not in O(apply) are persisted only and returned in RV(not_applied); on a container
    node these are the host kernel's keys, which must never be written from inside it.
  - Fails before writing anything when a key does not exist under O(proc_root) (with
    O(host_path), only the keys of O(apply) are looked for).
  - Supports check mode and diff mode.
version_added: "0.1.0"
options:
  path:
    description: The sysctl.d file to write.
    type: path
    required: true
  settings:
    description: Settings as a list of dicts with C(key), C(value) and optional C(rules).
    type: list
    elements: dict
    required: true
  apply:
    description: Keys whose running value is set now. Every key must be in O(settings).
    type: list
    elements: str
    default: []
  host_path:
    description:
      - When set, keys not in O(apply) go to this file instead of O(path). On a container
        node these are the host kernel's keys; systemd-sysctl applies /etc/sysctl.d at the
        container's boot, to the host, so they must live outside every sysctl.d directory.
    type: path
    default: ""
  header:
    description: Comment lines written at the top of the file.
    type: str
    default: ""
  config_dirs:
    description:
      - The sysctl.d directories, most important first. A file of the same name in an
        earlier directory masks the later one; the files are applied in lexical order of
        their names and /etc/sysctl.conf last, the last assignment of a key winning.
      - >-
        Before writing anything the module fails if another file would override one of its
        keys with a different value (explicit keys only: they win over globs).
    type: list
    elements: path
    default:
      - /etc/sysctl.d
      - /run/sysctl.d
      - /usr/local/lib/sysctl.d
      - /usr/lib/sysctl.d
      - /lib/sysctl.d
  proc_root:
    description: Where the running values live.
    type: path
    default: /proc/sys
author: m7guard
"""

EXAMPLES = r"""
- name: Persist and apply
  kernel_tuning_sysctl:
    path: /etc/sysctl.d/60-m7guard-kernel-tuning.conf
    settings:
      - {key: vm.swappiness, value: "1", rules: [PERF-001]}
    apply: [vm.swappiness]
"""

RETURN = r"""
file_changed:
  description: Whether the file was (or would be) rewritten.
  type: bool
  returned: always
runtime_changed:
  description: Keys whose running value was (or would be) changed, with before and after.
  type: dict
  returned: always
not_applied:
  description: Keys persisted but not applied at run time.
  type: list
  returned: always
running:
  description: Running value of every key after the module ran (before, in check mode).
  type: dict
  returned: always
"""


def normalize(value):
    return " ".join(str(value).split())


def proc_file(proc_root, key):
    return os.path.join(proc_root, *key.split("."))


def render(settings, header):
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    current = None
    for item in settings:
        rules = ", ".join(item.get("rules") or []) or "kernel_tuning"
        if rules != current:
            if lines:
                lines.append("")
            lines.append(f"# {rules}")
            current = rules
        lines.append(f"{item['key']} = {normalize(item['value'])}")
    return "\n".join(lines) + "\n"


HOST_HEADER = (
    "Keys of the host kernel, which this container shares: recorded here, never applied\n"
    "(/etc/sysctl.d is applied at the container's boot, to the host). Set them on the host.\n"
)


FORWARDING = re.compile(r"^net\.ipv[46]\.(ip_forward|conf\.[^.]+\.forwarding)$")


def apply_order(apply, settings):
    """Forwarding switches first (setting them rewrites other keys: ip_forward resets
    conf.all.accept_redirects), then the order of the settings."""
    rank = {s["key"]: i for i, s in enumerate(settings)}
    return sorted(apply, key=lambda k: (not FORWARDING.match(k), rank.get(k, len(rank))))


def assignments(text):
    """(key, value) of the explicit assignments of a sysctl.d file, in order."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().lstrip("-").strip()
        if any(c in key for c in "*?["):
            continue
        out.append((key.replace("/", "."), normalize(value)))
    return out


def overrides(config_dirs, path, content, desired):
    """Keys of `desired` that a file applied after `path` (or masking it) sets differently:
    {key: (value, file)}."""
    chosen = {}
    for directory in config_dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                chosen.setdefault(name, os.path.join(directory, name))
    ours = os.path.basename(path)
    chosen[ours] = path
    effective = {}
    seen = set()
    for name in sorted(chosen):
        target = chosen[name]
        text = content if target == path else (read_text(target) or "")
        seen.add(os.path.realpath(target))
        for key, value in assignments(text):
            effective[key] = (value, target)
    conf = "/etc/sysctl.conf"
    if os.path.realpath(conf) not in seen and os.path.exists(conf):
        for key, value in assignments(read_text(conf) or ""):
            effective[key] = (value, conf)
    return {
        key: effective[key]
        for key, value in desired.items()
        if key in effective and effective[key][1] != path and effective[key][0] != value
    }


def check_input(settings, apply):
    problems = []
    seen = set()
    for index, item in enumerate(settings):
        key = str(item.get("key", "")).strip()
        value = item.get("value")
        if not key or any(c.isspace() for c in key) or "/" in key or ".." in key:
            problems.append(f"settings[{index}]: invalid key {key!r}")
        if value is None or normalize(value) == "" or "\n" in str(value):
            problems.append(f"settings[{index}] ({key}): invalid value {value!r}")
        if key in seen:
            problems.append(f"settings[{index}]: {key} is set twice")
        seen.add(key)
    problems += [f"apply: {k} is not in settings" for k in apply if k not in seen]
    return problems


def run(module):
    path = module.params["path"]
    settings = module.params["settings"]
    apply = module.params["apply"]
    proc_root = module.params["proc_root"]
    problems = check_input(settings, apply)
    if problems:
        module.fail_json(msg="; ".join(problems))
    # keys persisted for the host only (host_path) need not be visible in this namespace
    checked = apply if module.params["host_path"] else [s["key"] for s in settings]
    missing = [k for k in checked if not os.path.exists(proc_file(proc_root, k))]
    if missing:
        module.fail_json(msg=f"no such kernel parameter: {', '.join(missing)}", missing=missing)

    desired = {s["key"]: normalize(s["value"]) for s in settings}
    host_path = module.params["host_path"]
    applied = set(apply)
    files = {path: [s for s in settings if not host_path or s["key"] in applied]}
    if host_path:
        files[host_path] = [s for s in settings if s["key"] not in applied]
    planned = {p: render(items, module.params["header"]) for p, items in files.items()}
    conflicts = overrides(module.params["config_dirs"], path, planned[path],
                          {s["key"]: desired[s["key"]] for s in files[path]})
    if conflicts:
        shown = "; ".join(f"{k} = {v} in {f} (wanted {desired[k]})"
                          for k, (v, f) in sorted(conflicts.items()))
        module.fail_json(
            msg=f"other sysctl files would override {path} at boot: {shown}. Remove or change "
                "them, or set these keys through kernel_tuning_sysctl_overrides",
            conflicts={k: {"value": v, "file": f} for k, (v, f) in conflicts.items()},
        )
    diffs = []
    file_changed = False
    for target_path, items in files.items():
        header = module.params["header"]
        if target_path == host_path:
            header = (HOST_HEADER + header).strip()
        content = render(items, header)
        before = read_text(target_path)
        if before == content:
            continue
        file_changed = True
        diffs.append({"before": before or "", "after": content,
                      "before_header": target_path, "after_header": target_path})
        if not module.check_mode:
            write_atomic(target_path, content)

    runtime_changed = {}
    running = {}
    for key in apply_order(apply, settings):
        target = proc_file(proc_root, key)
        current = normalize(read_text(target) or "")
        running[key] = current
        if current == desired[key]:
            continue
        runtime_changed[key] = {"before": current, "after": desired[key]}
        if module.check_mode:
            continue
        try:
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(desired[key])
        except OSError as exc:
            module.fail_json(
                msg=f"cannot set {key} = {desired[key]}: {exc.strerror}",
                file_changed=file_changed, runtime_changed=runtime_changed,
            )
    if not module.check_mode:
        # a write can change other keys (ip_forward resets accept_redirects): read all again
        for key in apply:
            running[key] = normalize(read_text(proc_file(proc_root, key)) or "")
        drifted = [k for k in apply if running[k] != desired[k]]
        if drifted:
            module.fail_json(
                msg="the kernel does not keep " + "; ".join(
                    f"{k} = {desired[k]} (it is {running[k]})" for k in drifted),
                file_changed=file_changed, runtime_changed=runtime_changed,
            )
    result = {
        "changed": file_changed or bool(runtime_changed),
        "file_changed": file_changed,
        "runtime_changed": runtime_changed,
        "not_applied": sorted(k for k in desired if k not in set(apply)),
        "running": running,
        "files": sorted(files),
    }
    if module._diff:
        result["diff"] = [
            *diffs,
            {"before": "".join(f"{k} = {v['before']}\n" for k, v in runtime_changed.items()),
             "after": "".join(f"{k} = {v['after']}\n" for k, v in runtime_changed.items()),
             "before_header": "running values", "after_header": "running values"},
        ]
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "settings": {"type": "list", "elements": "dict", "required": True},
            "apply": {"type": "list", "elements": "str", "default": []},
            "header": {"type": "str", "default": ""},
            "host_path": {"type": "path", "default": ""},
            "proc_root": {"type": "path", "default": "/proc/sys"},
            "config_dirs": {"type": "list", "elements": "path", "default": [
                "/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d",
                "/lib/sysctl.d"]},
        },
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
