"""The DF-* rules (the Data Fabric cluster, and DF-007 .. DF-009 of each Data Fabric node)
and the battery.

The battery breaks rules on the hardened lab nodes of test_site.py, which carry no Data
Fabric: every DF rule is notapplicable there (condition mapr_installed). They are cluster
rules read through maprcli, so their breaks are states of the maprcli stand-in: the unit tests
of tests/unit/checks/test_data_fabric_cluster.py break one property each (and an error reply
or an unreadable field, which must be `error`), and tests/integration/test_data_fabric.py
shows the fresh stand-in failing on a lab node and the node after the data_fabric role
passing (tests/proofs.py names them).
"""

from __future__ import annotations

from battery import Break

_WHY = ("reads the cluster through maprcli, which the battery's hardened nodes do not have "
        "(notapplicable: condition mapr_installed); broken in the stand-in's state by "
        "tests/unit/checks/test_data_fabric_cluster.py and on a lab node by "
        "tests/integration/test_data_fabric.py")
BREAKS: list[Break] = []
LEFT_OUT: dict[str, str] = {f"DF-00{n}": _WHY for n in range(1, 7)}
LEFT_OUT["DF-007"] = (
    "reads the node's Hadoop SSL files, which the battery's hardened nodes do not have "
    "(notapplicable: condition mapr_installed); broken in the stand-in's files by "
    "tests/unit/checks/test_data_fabric_ssl.py and on a lab node by "
    "tests/integration/test_data_fabric.py")
LEFT_OUT["DF-008"] = (
    "reads the node's NFSv3 gateway and exports, which the battery's hardened nodes do not "
    "have (notapplicable: condition mapr_installed); broken in the stand-in's exports by "
    "tests/unit/checks/test_data_fabric_nfs.py and on a lab node by "
    "tests/integration/test_data_fabric.py")
LEFT_OUT["DF-009"] = (
    "reads the node's Data Fabric tickets with maprlogin, which the battery's hardened nodes "
    "do not have (notapplicable: condition mapr_installed); broken with stand-in tickets by "
    "tests/unit/checks/test_data_fabric_tickets.py and on a lab node by "
    "tests/integration/test_data_fabric.py")
