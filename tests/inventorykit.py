"""Helpers of the inventory tests (tests/unit/inventory): a quick m7guard checkout for
preflight, commands run in child processes, and the environment that keeps AWS clients on
a moto server on 127.0.0.1 with a network guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from motokit import AWS_ENV

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NETGUARD = REPO / "tests" / "unit" / "inventory" / "netguard"
PLAYS = REPO / "tests" / "fixtures" / "preflight" / "all-roles.yml"
# The preflight rules an inventory decides (variables, sizing, the roles each group gets);
# the playbook syntax check and ansible-lint are left out: they do not read the inventory.
INVENTORY_RULES = ["PRE-001", "PRE-004", "PRE-005", "PRE-006", "PRE-007", "PRE-008",
                   "PRE-009", "PRE-010"]


def make_quick_root(root: Path) -> Path:
    """An m7guard checkout (roles, policies) whose only playbook is the fixture that gives
    every role to m7_nodes, with a profile `inventory` of the rules above."""
    (root / "roles").symlink_to(REPO / "roles")
    (root / "playbooks").mkdir()
    shutil.copy(PLAYS, root / "playbooks" / "site.yml")
    shutil.copytree(REPO / "policies", root / "policies")
    (root / "policies" / "profiles" / "inventory.yml").write_text(
        "---\nid: inventory\ntitle: what an inventory decides\nframeworks: [soc2]\n"
        f"select:\n  - ids: [{', '.join(INVENTORY_RULES)}]\n"
    )
    return root


def guarded_env(log: Path, **extra: str) -> dict[str, str]:
    """This environment with fake AWS credentials, no instance metadata, no AWS config files
    and the network guard: any connection beyond 127.0.0.1 is refused and logged in `log`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("ANSIBLE_INVENTORY", "PYTHONPATH")}
    env.update(AWS_ENV)
    path = os.pathsep.join(p for p in (str(NETGUARD), os.environ.get("PYTHONPATH")) if p)
    env.update({"PYTHONPATH": path, "M7GUARD_NETGUARD_LOG": str(log),
                "ANSIBLE_NOCOLOR": "1", **extra})
    return env


def m7guard(env: dict[str, str], *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "m7guard"), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600, check=False)


def ansible_inventory(env: dict[str, str], *args: str) -> dict:
    """`ansible-inventory ARGS --list`, with plain values: ansible-core 2.19 writes a value an
    inventory plugin made as {"__ansible_unsafe": value} (a mark of origin, not a change)."""
    proc = subprocess.run([str(BIN / "ansible-inventory"), *args, "--list"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d))


def members(listing: dict, group: str) -> set[str]:
    """Every host of a group in `ansible-inventory --list` output, children included."""
    entry = listing.get(group, {})
    found = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        found |= members(listing, child)
    return found
