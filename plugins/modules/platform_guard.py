#!/usr/bin/python
"""Documentation of the platform_guard action (plugins/action/platform_guard.py), which runs
on the controller; there is nothing to run on the node."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: platform_guard
short_description: Stop a role on a system it is not tested on
version_added: "0.1.0"
description:
  - Compares the node's distribution and release (its facts; the C(min) subset is gathered
    when the play gathered none) with the systems the calling role's C(meta/main.yml) lists
    under C(galaxy_info.platforms), the list Galaxy shows.
  - On a system not listed it fails, before the role changes anything, naming the system and
    the tested ones.
  - The variable C(m7guard_untested_platform_ok=true) lets every role of the collection run
    there anyway. That is unsupported; the run then carries a warning saying so.
  - It must be called from a role's tasks; it reports changed=false and runs in check mode.
options: {}
author:
  - m7guard
"""

EXAMPLES = r"""
- name: Stop on a system the role is not tested on
  m7guard.hardening.platform_guard: {}
  tags: [always]
"""

RETURN = r"""
tested:
  description: Whether the node's system is one the role lists.
  type: bool
  returned: always
distribution:
  description: The node's distribution (C(ansible_facts.distribution)).
  type: str
  returned: always
release:
  description: The node's release code name (C(ansible_facts.distribution_release)).
  type: str
  returned: always
"""

if __name__ == "__main__":
    raise SystemExit("platform_guard is an action plugin: it runs on the controller")
