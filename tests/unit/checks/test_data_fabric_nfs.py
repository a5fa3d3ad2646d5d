"""DF-008 and the data_fabric role's module data_fabric_nfs_exports.

The node is a fake host: its NFSv3 gateway probe and its /opt/mapr/conf/exports are answered
from a temporary file, which the module (run in-process, tests/modulekit.py) rewrites. The
inventory is a file server's: zero_trust_network admits its cluster and clients zones to the
nfs service (the role's own catalog and planning function compute it). The exports file is
the stand-in's (tests/standin/exports: `/mapr (rw)`, as the gateway ships it).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import modulekit
import pytest
from kernel_tuning_kit import load_module
from modulekit import FakeModule

from m7guard.checks import data_fabric as checks
from m7guard.checks.support.data_fabric import role_module

ROOT = Path(__file__).resolve().parents[3]
# the module writes with the collection's file helper, imported by its collection name
load_module("ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio",
            ROOT / "plugins" / "module_utils" / "m7guard_fileio.py")
SHIPPED = (ROOT / "tests" / "standin" / "exports").read_text()
CLIENTS, CLUSTER, OTHER = "10.2.0.0/24", "10.1.0.0/24", "10.9.0.0/24"
ZONES = {"admin": ["10.0.0.0/24"], "cluster": [CLUSTER], "clients": [CLIENTS, "fd02::/64"]}


class Module(FakeModule):
    """FakeModule with the gateway's `maprcli nfsmgmt refreshexports`, answering `refresh`."""

    refresh = (0, '{"status": "OK", "total": 0, "data": []}', "")
    calls: ClassVar[list[list[str]]] = []

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        type(self).calls.append(argv)
        return self.refresh


class Node:
    def __init__(self, where: Path, fake_host: Any, out: Any) -> None:
        self.exports = where / "exports"
        self.exports.write_text(SHIPPED)
        self.role_file = where / "nfs"
        self.role_file.touch()
        self.running: str | None = None
        self.variables: dict[str, Any] = {
            "group_names": ["m7_nodes", "fileserver"], "zero_trust_network_zones": ZONES,
            "data_fabric_nfs_clients": [CLIENTS, "fd02::/64"]}

        def answer(command: str) -> Any:
            if "nfsserver.pid" in command:
                lines = (["role"] if self.role_file.exists() else []) + (
                    [f"running {self.running}"] if self.running else []) + ["end"]
                return out(0, "\n".join(lines) + "\n", "")
            marker = re.search(r'(@@m7g-[0-9a-f]+) end', command).group(1)
            body = (f"{marker} {checks.EXPORTS}\n{self.exports.read_text()}\n"
                    if self.exports.exists() else "")
            return out(0, f"{body}{marker} end\n", "")

        self.host = fake_host({"sh -c": answer})
        self.host.backend = SimpleNamespace(NAME="ansible", get_variables=lambda: self.variables)

    def role(self, clients: Any = "inventory", check_mode: bool = False,
             refresh: tuple[int, str, str] | None = None) -> modulekit.Done:
        module = role_module("data_fabric_nfs_exports")
        params = {"path": str(self.exports), "role_file": str(self.role_file),
                  "maprcli": "maprcli", "clients": self.variables["data_fabric_nfs_clients"]
                  if clients == "inventory" else clients}
        fake = Module(params, check_mode)
        if refresh:
            fake.refresh = refresh
        return modulekit.run(module, fake)


@pytest.fixture
def node(tmp_path: Path, fake_host: Any, out: Any) -> Node:
    return Node(tmp_path, fake_host, out)


def test_the_shipped_exports_fail_and_the_role_restricts_them(node: Node, expect: Any) -> None:
    assert "/mapr is exported to every host (rw)" in expect.fail(
        checks.test_df_008, node.host, evidence={})
    Module.calls.clear()
    dry = node.role(check_mode=True)
    assert dry.result["changed"] and node.exports.read_text() == SHIPPED
    assert Module.calls == []  # check mode: the gateway is not told anything
    done = node.role()
    assert Module.calls == [["maprcli", "nfsmgmt", "refreshexports", "-json"]]
    assert done.result["changes"][0]["after"] == f"/mapr {CLIENTS},fd02::/64(rw)"
    assert node.exports.read_text().startswith(SHIPPED.rsplit("/mapr (rw)", 1)[0])  # comments
    assert not node.role().result["changed"]  # read before write
    evidence: dict[str, Any] = {}
    expect.run(checks.test_df_008, node.host, evidence=evidence)
    assert evidence["zero_trust_nfs"]["zones"] == ["cluster", "clients"]


def test_no_declared_client_exports_nothing(node: Node, expect: Any) -> None:
    node.variables["data_fabric_nfs_clients"] = []
    node.role()
    assert "# m7guard DF-008, not exported (no declared client): /mapr (rw)" in (
        node.exports.read_text())
    expect.run(checks.test_df_008, node.host, evidence={})


BROKEN = [
    (f"/mapr {OTHER}(rw)\n", f"exported to {OTHER}, not a declared NFS client"),
    (f"/mapr {OTHER}(rw)\n", "which zero_trust_network does not admit to NFS"),
    ("/mapr 10.2.0.7(ro) (ro)\n", "/mapr is exported to every host (ro)"),
    (f"/data cldb1:7222 {CLIENTS}(rw),{OTHER}(ro)\n", f"exported to {OTHER}"),
    ("/mapr/my.cluster.com /cluster (rw)\n", "/mapr/my.cluster.com is exported to every host"),
]


@pytest.mark.parametrize(("text", "words"), BROKEN)
def test_one_export_broken_fails(node: Node, expect: Any, text: str, words: str) -> None:
    node.exports.write_text(f"/mapr {CLIENTS}(rw)\n")
    expect.run(checks.test_df_008, node.host, evidence={})
    node.exports.write_text(node.exports.read_text() + text)
    assert words in expect.fail(checks.test_df_008, node.host, evidence={})


def test_a_declared_client_the_firewall_does_not_admit_fails(node: Node, expect: Any) -> None:
    """data_fabric_nfs_clients and zero_trust_network must agree: a declared network outside
    what the firewall admits to NFS, or a node without the nfs service, fails."""
    node.variables["data_fabric_nfs_clients"] = [CLIENTS, OTHER]
    node.exports.write_text(f"/mapr {OTHER}(rw)\n")
    assert f"exported to {OTHER}, which zero_trust_network does not admit" in expect.fail(
        checks.test_df_008, node.host, evidence={})
    node.exports.write_text(f"/mapr {CLIENTS}(rw)\n")
    node.variables["group_names"] = ["m7_nodes"]  # not a file server: no nfs service
    assert "which zero_trust_network does not admit to NFS" in expect.fail(
        checks.test_df_008, node.host, evidence={})


def test_no_gateway_passes_and_a_gateway_without_its_role_file_fails(node: Node,
                                                                    expect: Any) -> None:
    node.role_file.unlink()
    evidence: dict[str, Any] = {}
    expect.run(checks.test_df_008, node.host, evidence=evidence)
    assert "no NFSv3 gateway" in evidence["gateway"]["verdict"]
    assert not node.role().result["changed"]
    node.running = "4242"
    assert "an NFSv3 gateway runs (pid 4242" in expect.fail(
        checks.test_df_008, node.host, evidence={})


UNREADABLE = [
    ("/mapr rw\n", "cannot be read"),
    # a non-/mapr path needs its CLDB list: a host in its place is not taken for one
    (f"/data 10.9.0.5(rw) {CLIENTS}(rw)\n", "is not followed by a CLDB list"),
    ("/mapr\n", "has no access control"),
    ("/mapr client1.lab.test(rw)\n", "is a host name"),
]


@pytest.mark.parametrize(("text", "words"), UNREADABLE)
def test_an_unreadable_export_is_an_error_and_refused(node: Node, expect: Any, text: str,
                                                      words: str) -> None:
    node.exports.write_text(text)
    assert words in expect.error(checks.test_df_008, node.host, evidence={})
    refused = node.role()
    assert refused.failed and "nothing was changed" in refused.result["msg"]
    assert node.exports.read_text() == text


def test_missing_evidence_is_an_error(node: Node, expect: Any) -> None:
    node.exports.unlink()
    assert "cannot be read" in expect.error(checks.test_df_008, node.host, evidence={})
    node.exports.write_text(SHIPPED)
    node.host.backend = SimpleNamespace(NAME="local")
    assert "cannot be computed" in expect.error(checks.test_df_008, node.host, evidence={})


def test_bad_declared_clients_are_refused_naming_the_variable(node: Node) -> None:
    refused = node.role(clients=["10.2.0.0/24", "clients-zone"])
    assert refused.failed and "data_fabric_nfs_clients: 'clients-zone' is not a network" in (
        refused.result["msg"])
    assert node.exports.read_text() == SHIPPED


def test_a_non_mapr_export_keeps_its_cldb_list(node: Node) -> None:
    node.exports.write_text(f"/data cldb1:7222,cldb2:7222 {CLIENTS}(rw),{OTHER}(ro) (ro)\n")
    node.role()
    assert node.exports.read_text() == (
        f"/data cldb1:7222,cldb2:7222 {CLIENTS}(rw) {CLIENTS},fd02::/64(ro)\n")


def test_unset_clients_refuse_a_gateway_with_exports(node: Node) -> None:
    """data_fabric_nfs_clients unset: nothing is cut off by default; the role refuses, naming
    the variable, until the clients (or [] for none) are declared."""
    refused = node.role(clients=None)
    assert refused.failed and "data_fabric_nfs_clients is not set" in refused.result["msg"]
    assert node.exports.read_text() == SHIPPED
    node.exports.write_text("# no export\n")
    assert not node.role(clients=None).result["changed"]


def test_a_gateway_that_cannot_reread_its_exports_keeps_the_old_file(node: Node) -> None:
    failed = node.role(refresh=(1, "", "ERROR (10009) - Couldn't connect to the NFS server"))
    assert failed.failed and "refreshexports failed" in failed.result["msg"]
    assert node.exports.read_text() == SHIPPED  # put back: the next run makes the change again
    assert node.role().result["changed"]


def test_an_alias_is_kept(node: Node) -> None:
    node.exports.write_text("/mapr/my.cluster.com /cluster (rw)\n")
    node.role()
    assert node.exports.read_text() == f"/mapr/my.cluster.com /cluster {CLIENTS},fd02::/64(rw)\n"
