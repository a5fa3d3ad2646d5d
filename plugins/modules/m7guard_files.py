#!/usr/bin/python
"""Write several managed files, settings in files, directories and modes in one call."""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio import (
    read_text,
    write_atomic,
)

DOCUMENTATION = r"""
---
module: m7guard_files
short_description: Write several managed files, settings in files, directories and modes in one call
description:
  - Each item of O(files) is one path. With C(content) it is written as a whole file, or,
    with C(marker), as a block between C(# BEGIN marker) and C(# END marker) lines inside a
    file that may hold other text (the block is appended when absent; the file keeps its
    mode and owner).
  - With C(settings) (a list of C(regexp) and C(line)), every line of the file matching a
    C(regexp) becomes its C(line) and a C(line) no line matches is appended; other lines
    are kept.
  - With C(state=directory) the directory is created when missing.
  - Without content or settings, only the mode and owner of the existing path are set; a
    missing path is an error.
  - Missing parent directories are created (mode 0755).
  - >-
    One call instead of one per file: on a node under software emulation every module call
    costs seconds.
  - Every item is checked before anything is written. Supports check mode and diff mode.
version_added: "0.1.0"
options:
  files:
    description:
      - Items with C(path) (absolute) and optional C(content), C(marker), C(settings),
        C(state) (file, the default, or directory), C(mode) (octal string; default 0644,
        0755 for a directory), C(owner) and C(group) (default root).
    type: list
    elements: dict
    required: true
author: m7guard
"""

EXAMPLES = r"""
- name: Write the limits, a block of env_override.sh and two login.defs settings
  m7guard_files:
    files:
      - path: /etc/security/limits.d/90-m7guard-mapr.conf
        content: "mapr soft nofile 65536\n"
      - path: /opt/mapr/conf/env_override.sh
        marker: m7guard kernel_tuning
        content: "export MAPR_MEMORY_OPTS=-Xmx2048m\n"
      - path: /etc/login.defs
        settings:
          - {regexp: '^\s*PASS_MAX_DAYS\s', line: "PASS_MAX_DAYS\t90"}
          - {regexp: '^\s*UMASK\s', line: "UMASK\t027"}
      - path: /etc/shadow
        mode: "0640"
        group: shadow
"""

RETURN = r"""
changed_files:
  description: Paths that were (or would be) written, created or whose mode or owner changed.
  type: list
  returned: always
"""

KEYS = {"path", "content", "marker", "settings", "state", "mode", "owner", "group"}


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


def with_settings(existing, settings):
    """`existing` with each line matching a setting's regexp replaced by its line, and the
    lines no line matched appended."""
    lines = (existing or "").splitlines()
    for setting in settings:
        pattern, line = re.compile(setting["regexp"]), setting["line"]
        found = False
        for i, current in enumerate(lines):
            if pattern.search(current):
                lines[i], found = line, True
        if not found:
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def _uid(name):
    return pwd.getpwnam(name).pw_uid


def _gid(name):
    return grp.getgrnam(name).gr_gid


def check_items(items):
    problems = []
    for index, item in enumerate(items):
        path = item.get("path")
        where = f"files[{index}] ({path})"
        if not isinstance(path, str) or not os.path.isabs(path) or ".." in path.split("/"):
            problems.append(f"files[{index}]: path must be absolute, not {path!r}")
            continue
        unknown = sorted(set(item) - KEYS)
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(unknown)}")
        state = item.get("state", "file")
        if state not in ("file", "directory"):
            problems.append(f"{where}: state must be file or directory, not {state!r}")
        if "content" in item and not isinstance(item["content"], str):
            problems.append(f"{where}: content must be text")
        if "marker" in item and "content" not in item:
            problems.append(f"{where}: a marker needs content")
        if "content" in item and "settings" in item:
            problems.append(f"{where}: content or settings, not both")
        if state == "directory" and ("content" in item or "settings" in item):
            problems.append(f"{where}: a directory has no content or settings")
        for j, setting in enumerate(item.get("settings") or []):
            try:
                re.compile(setting["regexp"])
                if not isinstance(setting["line"], str):
                    raise TypeError("line")
            except (KeyError, TypeError, re.error) as exc:
                problems.append(f"{where}: settings[{j}] needs a regexp and a line ({exc})")
        mode = str(item.get("mode", "0644"))
        try:
            int(mode, 8)
        except ValueError:
            problems.append(f"{where}: mode {mode!r} is not octal")
        for key, lookup in (("owner", _uid), ("group", _gid)):
            try:
                lookup(item.get(key, "root"))
            except KeyError:
                problems.append(f"{where}: no {key} {item.get(key)!r} on this node")
        writes = "content" in item or "settings" in item or state == "directory"
        if not writes and not os.path.lexists(path):
            problems.append(f"{where}: does not exist (nothing to write, only modes to set)")
    return problems


def _attributes(mode, uid, gid):
    return (f"mode {mode:04o} owner {pwd.getpwuid(uid).pw_name} "
            f"group {grp.getgrgid(gid).gr_name}\n")


def _apply(module, item):
    """Bring one item to its state; return its diff when it changes (or would)."""
    path = item["path"]
    state = item.get("state", "file")
    mode = int(str(item.get("mode", "0755" if state == "directory" else "0644")), 8)
    uid, gid = _uid(item.get("owner", "root")), _gid(item.get("group", "root"))
    st = os.lstat(path) if os.path.lexists(path) else None
    if state == "directory":
        if st is not None and not stat.S_ISDIR(st.st_mode):
            module.fail_json(msg=f"{path}: exists and is not a directory")
        before = None if st is None else _attributes(stat.S_IMODE(st.st_mode), st.st_uid,
                                                    st.st_gid)
        after = _attributes(mode, uid, gid)
        if before == after:
            return None
        if not module.check_mode:
            if st is None:
                os.makedirs(path, mode=0o755, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return {"before": before or "(absent)\n", "after": after,
                "before_header": f"{path}/", "after_header": f"{path}/"}
    if st is not None and stat.S_ISLNK(st.st_mode):
        module.fail_json(msg=f"{path}: is a symbolic link; m7guard_files manages files")
    if st is not None and not stat.S_ISREG(st.st_mode):
        module.fail_json(msg=f"{path}: exists and is not a regular file")
    before = read_text(path) if st is not None else None
    marker = item.get("marker")
    if marker and st is not None:  # a shared file keeps its mode and owner
        mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    if "content" in item:
        after = with_block(before, marker, item["content"]) if marker else item["content"]
    elif "settings" in item:
        after = with_settings(before, item["settings"])
    else:
        after = before
    attrs_before = None if st is None else _attributes(stat.S_IMODE(st.st_mode), st.st_uid,
                                                       st.st_gid)
    attrs_after = _attributes(mode, uid, gid)
    if before == after and attrs_before == attrs_after:
        return None
    if not module.check_mode:
        if before != after:
            write_atomic(path, after, mode, uid, gid)
        else:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
    if before == after:
        return {"before": attrs_before, "after": attrs_after,
                "before_header": f"{path} (mode, owner)", "after_header": f"{path} (mode, owner)"}
    return {"before": before or "", "after": after, "before_header": path, "after_header": path}


def run(module):
    items = module.params["files"]
    problems = check_items(items)
    if problems:
        module.fail_json(msg="; ".join(problems))
    changed, diffs = [], []
    for item in items:
        diff = _apply(module, item)
        if diff is not None:
            changed.append(item["path"])
            diffs.append(diff)
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
