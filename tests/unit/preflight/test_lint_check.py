"""PRE-003 (ansible-lint) and PRE-002 (the syntax check) on a small tree of their own: a clean
playbook passes, one problem fails, and an unchanged tree reuses the first run's result
while any changed byte runs the tool again."""

from __future__ import annotations

from pathlib import Path

from m7guard.preflight import checks
from m7guard.preflight.checks import Context, pre_002, pre_003

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


def test_syntax_result_follows_the_tree(tmp_path: Path) -> None:
    """PRE-002 checks an unchanged tree once per process; a changed byte of a playbook or of
    a role it uses checks it again, and a syntax error fails."""
    tasks = tmp_path / "playbooks" / "roles" / "hello" / "tasks"  # found beside the playbook
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("---\n- name: Say hello\n  ansible.builtin.debug:\n"
                                    "    msg: hello\n")
    play = tmp_path / "playbooks" / "play.yml"
    play.write_text(CLEAN + "  roles:\n    - role: hello\n")
    checks._syntax_check.cache_clear()

    assert pre_002(_context(tmp_path)).state == "pass", pre_002(_context(tmp_path))
    assert pre_002(_context(tmp_path)).state == "pass"
    info = checks._syntax_check.cache_info()
    assert (info.misses, info.hits) == (1, 1)  # the unchanged tree was checked once

    (tasks / "main.yml").write_text("---\n- name: Broken\n  ansible.builtin.debug:\n"
                                    "    msg: [unclosed\n")
    outcome = pre_002(_context(tmp_path))
    assert outcome.state == "fail", outcome
    assert "play.yml" in outcome.evidence["errors"], outcome.evidence
    assert checks._syntax_check.cache_info().misses == 2

    play.write_text(CLEAN)  # the play no longer uses the broken role
    assert pre_002(_context(tmp_path)).state == "pass"
    assert checks._syntax_check.cache_info().misses == 3
