"""Every command that reads an inventory takes what `ansible-playbook -i` takes: a file, a
directory with group_vars beside the hosts, several -i, and refuses a bad source by name.

The audits run on this machine through Ansible's local connection (read-only checks), as in
tests/unit/audit, and on `ghost`, a host on a closed 127.0.0.1 port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from inventorykit import REPO, members

from m7guard.cli import cli
from m7guard.inventory import InventoryError, load_inventory

EXAMPLE = REPO / "inventories" / "example"
POLICIES = str(REPO / "policies")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def preflight(root: Path, out: Path, *inventory: str) -> tuple[Result, dict]:
    args = [a for source in inventory for a in ("-i", source)]
    result = run("preflight", *args, "--root", str(root), "--profile", "inventory",
                 "--fail-on", "low", "--out", str(out))
    path = out / "results.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def audit(out: Path, *inventory: str) -> tuple[Result, dict]:
    args = [a for source in inventory for a in ("-i", source)]
    result = run("audit", *args, "--profile", "kernel", "--policies", POLICIES,
                 "--fail-on", "none", "--out", str(out))
    path = out / "results.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def local_dir(tmp_path: Path) -> Path:
    """An inventory directory whose hosts file names localhost only: the local connection
    comes from group_vars beside it, so an audit that ignores group_vars cannot reach it."""
    inv = tmp_path / "local"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("---\nall:\n  children:\n    m7_nodes:\n"
                                   "      hosts:\n        localhost:\n")
    (inv / "group_vars" / "m7_nodes.yml").write_text("---\nansible_connection: local\n")
    return inv


@pytest.fixture
def ghost(tmp_path: Path) -> Path:
    path = tmp_path / "ghost.yml"
    path.write_text("---\nall:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.1\n"
                    f"      ansible_port: {_closed_port()}\n      ansible_user: root\n")
    return path


# -- preflight ----------------------------------------------------------------------------


def test_preflight_reads_the_example_directory_as_its_hosts_file(
    quick_root: Path, tmp_path: Path
) -> None:
    by_dir, data = preflight(quick_root, tmp_path / "dir", str(EXAMPLE))
    assert by_dir.exit_code == 0, by_dir.output
    by_file, same = preflight(quick_root, tmp_path / "file", str(EXAMPLE / "hosts.yml"))
    assert by_file.exit_code == 0, by_file.output
    assert data["inventory"] == str(EXAMPLE)
    assert sorted(h["name"] for h in data["hosts"]) == [f"dn{i}" for i in range(1, 6)]

    def cells(d: dict) -> dict:
        return {(r["host"], r["rule"]): (r["state"], r["message"]) for r in d["results"]}

    assert cells(data) == cells(same)
    assert {state for state, _ in cells(data).values()} == {"pass", "notapplicable"}


def test_preflight_merges_several_sources_in_order(quick_root: Path, tmp_path: Path) -> None:
    """A second -i adds a node; the first source's group_vars apply to it as to the others,
    and a later source's host variable wins, as with ansible-playbook."""
    more = tmp_path / "more.yml"
    more.write_text("---\nall:\n  children:\n    m7_nodes:\n      hosts:\n"
                    "        dn6: {ansible_host: 10.20.1.16, m7i_instance_type: m7i.2xlarge}\n"
                    "        dn5: {m7i_instance_type: m6i.4xlarge}\n")
    result, data = preflight(quick_root, tmp_path / "out", str(EXAMPLE), str(more))
    assert result.exit_code == 2, result.output
    assert data["inventory"] == f"{EXAMPLE}, {more}"
    cell = {(r["host"], r["rule"]): r for r in data["results"]}
    assert cell[("dn6", "PRE-009")]["evidence"] == {"m7i_instance_type": "m7i.2xlarge"}
    for rule in ("PRE-001", "PRE-004", "PRE-005", "PRE-008", "PRE-009"):
        assert cell[("dn6", rule)]["state"] == "pass", cell[("dn6", rule)]
    failing = {k for k, r in cell.items() if r["state"] == "fail"}
    assert failing == {("dn5", "PRE-009")}


# -- audit --------------------------------------------------------------------------------


def test_audit_reads_group_vars_beside_the_hosts_of_a_directory(
    local_dir: Path, tmp_path: Path
) -> None:
    result, data = audit(tmp_path / "out", str(local_dir))
    assert result.exit_code == 0, result.output
    assert data["inventory"] == str(local_dir)
    (host,) = data["hosts"]
    assert host["name"] == "localhost"
    assert host["reachable"], host["error"]
    assert "m7_nodes" in host["groups"]
    assert {r["state"] for r in data["results"]} <= {"pass", "fail", "notapplicable"}


def test_audit_merges_several_sources(local_dir: Path, ghost: Path, tmp_path: Path) -> None:
    result, data = audit(tmp_path / "out", str(local_dir), str(ghost))
    assert result.exit_code == 0, result.output
    assert data["inventory"] == f"{local_dir}, {ghost}"
    reach = {h["name"]: h["reachable"] for h in data["hosts"]}
    assert reach == {"localhost": True, "ghost": False}


# -- bad input ----------------------------------------------------------------------------


def _bad_sources(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.yml").write_text("---\n- just\n- a list\n")
    (tmp_path / "other.nope.yml").write_text("---\nplugin: example.nothing.nope\n")
    return {
        "missing": (tmp_path / "none.yml", "not found"),
        "empty directory": (tmp_path / "empty", "cannot be read as an Ansible inventory"),
        "not an inventory": (tmp_path / "notes.yml", "cannot be read as an Ansible inventory"),
        "plugin not installed": (tmp_path / "other.nope.yml",
                                 "example.nothing.nope, which is not installed"),
    }


@pytest.mark.parametrize("case", ["missing", "empty directory", "not an inventory",
                                  "plugin not installed"])
@pytest.mark.parametrize("command", ["audit", "preflight"])
def test_a_bad_source_stops_the_command_naming_it(
    command: str, case: str, local_dir: Path, quick_root: Path, tmp_path: Path
) -> None:
    bad, words = _bad_sources(tmp_path)[case]
    out = tmp_path / "out"
    if command == "audit":
        result, data = audit(out, str(local_dir), str(bad))
    else:
        result, data = preflight(quick_root, out, str(EXAMPLE), str(bad))
    assert result.exit_code == 1, result.output
    assert f"inventory {bad}" in result.output
    assert words in result.output
    assert data == {}


# -- the shared function ------------------------------------------------------------------


def test_load_inventory_is_what_ansible_inventory_reads(local_dir: Path, ghost: Path,
                                                        tmp_path: Path) -> None:
    inv = load_inventory([local_dir, str(ghost), "node7,node8,"])
    assert sorted(h.name for h in inv.hosts()) == ["ghost", "localhost", "node7", "node8"]
    local = inv.manager.get_host("localhost")
    assert inv.host_vars(local)["ansible_connection"] == "local"
    assert inv.groups_of(local) == ["m7_nodes"]
    env = inv.environment(tmp_path, {"PATH": str(Path(sys.executable).parent)})
    paths = env["ANSIBLE_INVENTORY"].split(",")
    assert paths[:2] == [str(local_dir), str(ghost)]
    assert "node7" in Path(paths[2]).read_text()
    again = load_inventory(paths)
    assert sorted(h.name for h in again.hosts()) == sorted(h.name for h in inv.hosts())
    listed = subprocess.run(["ansible-inventory", "--list"], env=env, capture_output=True,
                            text=True, check=True, timeout=120)
    listing = json.loads(listed.stdout)
    assert members(listing, "all") == {"ghost", "localhost", "node7", "node8"}
    assert listing["_meta"]["hostvars"]["localhost"]["ansible_connection"] == "local"


def _listed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ansible-inventory", *args], env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def test_the_checks_read_what_ansible_inventory_prints(local_dir: Path, ghost: Path,
                                                       tmp_path: Path) -> None:
    """The listing the audit hands its checks (`ansible-inventory --list` through the shim
    on PATH) equals what the real command prints for the same sources, in the same order:
    nested groups, a group's children listed once, group_vars of several kinds, host_vars, a
    host in two groups, a host list; and another form of the command still runs the real
    one."""
    (local_dir / "more.yml").write_text(
        "---\nall:\n  vars:\n    site_wide: 1\n  children:\n    cldb:\n      hosts:\n"
        "        localhost:\n        node9:\n          m7i_instance_type: m7i.4xlarge\n"
        "    zookeeper:\n      children:\n        cldb:\n    empty_group: {}\n")
    (local_dir / "group_vars" / "cldb.yml").write_text(
        "---\nports: [7222, 7220]\nnested: {a: {b: [1, 2.5, true, null]}}\n"
        "valid_until: 2026-01-31\ntext: \"{{ '{{' }} not templated }}\"\n")
    (local_dir / "host_vars").mkdir()
    (local_dir / "host_vars" / "node9.yml").write_text("---\nansible_host: 127.0.0.9\n")
    inv = load_inventory([local_dir, str(ghost), "node7,node8,"])
    bindir = str(Path(sys.executable).parent)
    env = inv.environment(tmp_path, {"PATH": bindir})
    shim = _listed(env, "--list")
    # the real command given the sources as ansible-playbook is (-i each)
    real = _listed({"PATH": bindir}, "-i", str(local_dir), "-i", str(ghost), "-i",
                   "node7,node8,", "--list")
    assert shim.returncode == real.returncode == 0, shim.stderr + real.stderr
    unmarked = json.loads(real.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d))
    assert json.loads(shim.stdout) == unmarked
    assert inv.listing() == unmarked
    listing = json.loads(shim.stdout)
    assert members(listing, "zookeeper") == {"localhost", "node9"}
    assert listing["_meta"]["hostvars"]["node9"]["ansible_host"] == "127.0.0.9"
    assert listing["_meta"]["hostvars"]["localhost"]["nested"] == {"a": {"b": [1, 2.5, True,
                                                                            None]}}
    one = _listed(env, "--host", "node9")
    assert one.returncode == 0 and json.loads(one.stdout)["ansible_host"] == "127.0.0.9"


def test_an_inventory_without_hosts_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "hosts.yml"
    empty.write_text("---\nall:\n  children:\n    m7_nodes: {}\n")
    with pytest.raises(InventoryError, match=f"inventory {empty}: no host in it"):
        load_inventory(empty)
