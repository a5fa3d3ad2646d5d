"""PRE-003 (ansible-lint) on a small tree of its own: a clean playbook passes, one lint
problem fails, and an unchanged tree reuses the first run's result while any changed byte
runs ansible-lint again."""

from __future__ import annotations

from pathlib import Path

from m7guard.preflight import checks
from m7guard.preflight.checks import Context, pre_003

CLEAN = """---
- name: A clean play
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
"""


def _context(root: Path) -> Context:
    return Context(root=root, playbooks=[root / "playbooks" / "play.yml"],
                   roles_dir=root / "roles", params={})


def test_lint_result_follows_the_tree(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "roles").mkdir()
    play = tmp_path / "playbooks" / "play.yml"
    play.write_text(CLEAN)
    checks._ansible_lint.cache_clear()

    assert pre_003(_context(tmp_path)).state == "pass"
    assert pre_003(_context(tmp_path)).state == "pass"
    info = checks._ansible_lint.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # the unchanged tree was linted once

    play.write_text(CLEAN.replace("ansible.builtin.debug", "debug"))  # fqcn[action-core]
    outcome = pre_003(_context(tmp_path))
    assert outcome.state == "fail", outcome
    assert any("fqcn" in line for line in outcome.evidence["output"]), outcome.evidence
    assert checks._ansible_lint.cache_info().misses == 2
