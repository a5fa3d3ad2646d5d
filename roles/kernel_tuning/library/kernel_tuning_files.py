#!/usr/bin/python
"""Write several managed files (whole files or a marked block inside one) in one call."""

from __future__ import annotations

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kernel_tuning_common import read_text, write_atomic

DOCUMENTATION = r"""
---
module: kernel_tuning_files
short_description: Write several managed files, or marked blocks in them, in one call
description:
  - Each item of O(files) is written as a whole file with root ownership and its mode, or,
    with C(marker), as a block between C(# BEGIN marker) and C(# END marker) lines inside a
    file that may hold other text (the block is appended when absent).
  - Missing parent directories are created (mode 0755).
  - One call instead of one per file: on a node under software emulation every module call
    costs seconds.
  - Supports check mode and diff mode.
version_added: "0.1.0"
options:
  files:
    description:
      - Items with C(path) (absolute), C(content), optional C(mode) (octal string, default
        0644) and optional C(marker).
    type: list
    elements: dict
    required: true
author: m7guard
"""

EXAMPLES = r"""
- name: Write the limits and a block of env_override.sh
  kernel_tuning_files:
    files:
      - path: /etc/security/limits.d/90-m7guard-mapr.conf
        content: "mapr soft nofile 65536\n"
      - path: /opt/mapr/conf/env_override.sh
        marker: m7guard kernel_tuning
        content: "export MAPR_MEMORY_OPTS=-Xmx2048m\n"
"""

RETURN = r"""
changed_files:
  description: Paths that were (or would be) written or whose mode was changed.
  type: list
  returned: always
"""


def with_block(existing, marker, block):
    """`existing` with the marked block replaced (or appended) by `block`."""
    begin, end = f"# BEGIN {marker}", f"# END {marker}"
    body = block if block.endswith("\n") else block + "\n"
    section = f"{begin}\n{body}{end}\n"
    lines = (existing or "").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == begin]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == end]
    if starts and ends and ends[-1] > starts[0]:
        return "".join(lines[: starts[0]]) + section + "".join(lines[ends[-1] + 1 :])
    text = existing or ""
    if text and not text.endswith("\n"):
        text += "\n"
    return text + section


def check_items(items):
    problems = []
    for index, item in enumerate(items):
        path = item.get("path")
        if not isinstance(path, str) or not os.path.isabs(path) or ".." in path.split("/"):
            problems.append(f"files[{index}]: path must be absolute, not {path!r}")
        if not isinstance(item.get("content"), str):
            problems.append(f"files[{index}] ({path}): content must be text")
        mode = str(item.get("mode", "0644"))
        try:
            int(mode, 8)
        except ValueError:
            problems.append(f"files[{index}] ({path}): mode {mode!r} is not octal")
    return problems


def run(module):
    items = module.params["files"]
    problems = check_items(items)
    if problems:
        module.fail_json(msg="; ".join(problems))
    changed, diffs = [], []
    for item in items:
        path = item["path"]
        mode = int(str(item.get("mode", "0644")), 8)
        before = read_text(path)
        marker = item.get("marker")
        after = with_block(before, marker, item["content"]) if marker else item["content"]
        if before is not None and not marker:
            current_mode = stat.S_IMODE(os.stat(path).st_mode)
        elif before is not None:
            current_mode = mode = stat.S_IMODE(os.stat(path).st_mode)  # keep a shared file's mode
        else:
            current_mode = None
        if before == after and current_mode == mode:
            continue
        changed.append(path)
        diffs.append({"before": before or "", "after": after,
                      "before_header": path, "after_header": path})
        if not module.check_mode:
            write_atomic(path, after, mode)
    result = {"changed": bool(changed), "changed_files": changed}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True}},
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
