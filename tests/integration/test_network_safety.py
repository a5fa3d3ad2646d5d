"""zero_trust_network's safety on one node (node3): check mode, refused input, lockout
protection with automatic rollback, and the optional egress policy.

node3 starts fresh (`m7guard lab reset`). Check mode must show the ruleset and change
nothing; then the role hardens the node, and every refused input (an invalid CIDR, a port out
of range, an unknown service, an empty admin list, an allow-list without the controller) must
stop the play before any change, naming the variable. With the lockout override the new
ruleset cuts the controller off, and the timer must bring the previous ruleset back within
zero_trust_network_confirm_timeout. Last, egress drop with an allow-list is measured with real
connections and NET-010 passes (it fails on the default egress policy, see
test_network_segmentation.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from labkit import LabHandle
from netsim import lab as netlab

from m7guard.results import Results

pytestmark = [pytest.mark.lab]

NODE = "node3"
CONFIRM_TIMEOUT = 20
PERSISTED = "sha256sum /etc/nftables.conf 2>/dev/null; true"
STAGED = "sha256sum /etc/zero_trust_network/ruleset.nft 2>/dev/null; true"


def play(lab: LabHandle, extra: dict[str, Any] | None = None, *args: str,
         check: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["playbooks/zero_trust_network.yml", "--limit", NODE, *args]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    return lab.playbook(*cmd, check=check)


def recap(output: str) -> dict[str, int]:
    m = re.search(rf"^{NODE}\s+:\s+(.*)$", output, re.MULTILINE)
    assert m, output
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def state(lab: LabHandle) -> tuple[str, str, str]:
    """The live ruleset's checksum and the checksums of the persisted and staged files."""
    return (netlab.ruleset_checksum(lab, NODE), lab.ssh(NODE, PERSISTED).stdout,
            lab.ssh(NODE, STAGED).stdout)


@pytest.fixture(scope="module")
def zones(lab: LabHandle) -> dict[str, list[str]]:
    return netlab.inventory_vars(lab, (NODE,))[NODE].zones


@pytest.fixture(scope="module")
def admin_ports(lab: LabHandle) -> str:
    """The TCP ports node3 offers the admin zone, as the ruleset writes them ("22" alone, or
    "{ 22, 7221 }"), from the inventory and the role's catalog."""
    nv = netlab.inventory_vars(lab, (NODE,))[NODE]
    ports = sorted(netlab.tcp_ports({name: spec for name, spec in
                                     netlab.node_services(NODE, nv).items()
                                     if "admin" in spec.get("zones", [])}))
    assert 22 in ports, ports
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


@pytest.fixture(scope="module")
def controller(lab: LabHandle) -> str:
    inv = yaml.safe_load(lab.inventory.read_text())
    return str(inv["all"]["vars"]["m7guard_lab_controller_addresses"][0])


@pytest.fixture(scope="module")
def fresh_check(lab: LabHandle) -> dict[str, Any]:
    """A fresh node3, then the role in check mode on it."""
    lab.m7guard("lab", "reset", NODE)
    before = state(lab)
    proc = play(lab, None, "--check", "--diff")
    return {"before": before, "after": state(lab), "proc": proc,
            "nftables": lab.ssh(NODE, "dpkg -s nftables", check=False).returncode}


@pytest.fixture(scope="module")
def ufw(lab: LabHandle, fresh_check: dict[str, Any]) -> dict[str, Any]:
    """ufw installed and on (SSH allowed), the role refusing it, then hardening node3."""
    lab.ssh(NODE, "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
                  "apt-get install -y -qq ufw >/dev/null && ufw allow 22/tcp >/dev/null && "
                  "ufw --force enable >/dev/null", timeout=600)
    refused = play(lab, {"zero_trust_network_conflicting_firewalls": "fail"})
    before = lab.ssh(NODE, "ufw status").stdout
    play(lab, check=True)
    after = lab.ssh(NODE, "ufw status; systemctl is-enabled ufw.service", check=False).stdout
    return {"refused": refused, "before": before, "after": after, "state": state(lab)}


@pytest.fixture(scope="module")
def hardened(ufw: dict[str, Any]) -> tuple[str, str, str]:
    return ufw["state"]


def test_check_mode_on_a_fresh_node_shows_the_ruleset_and_changes_nothing(
        fresh_check: dict[str, Any], admin_ports: str) -> None:
    proc = fresh_check["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "+table inet m7guard {" in out
    assert "+\t\ttype filter hook input priority filter; policy drop;" in out
    assert f"+\t\tip saddr @zone_admin_v4 tcp dport {admin_ports} accept" in out
    assert f"+\t\tip6 saddr @zone_admin_v6 tcp dport {admin_ports} accept" in out
    assert fresh_check["before"] == fresh_check["after"] == ("no-nft", "", "")
    assert fresh_check["nftables"] != 0, "check mode installed nftables"


def test_ufw_is_refused_or_turned_off(ufw: dict[str, Any]) -> None:
    refused = ufw["refused"]
    assert refused.returncode != 0
    assert "ufw installed" in refused.stdout and "zero_trust_network_conflicting_firewalls" in (
        refused.stdout), refused.stdout[-2000:]
    assert recap(refused.stdout)["changed"] == 0
    assert "Status: active" in ufw["before"]
    assert "Status: inactive" in ufw["after"] and "masked" in ufw["after"], ufw["after"]


def test_bad_input_is_refused_before_any_change(
        lab: LabHandle, hardened: tuple[str, str, str], zones: dict[str, list[str]],
        controller: str) -> None:
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "invalid CIDR": (
            {"zero_trust_network_zones": {**zones, "cluster": [*zones["cluster"], "10.1.2.0/33"]}},
            ["zero_trust_network_zones.cluster[2]: '10.1.2.0/33' is not a valid"]),
        "port out of range": (
            {"zero_trust_network_services": ["metrics"],
             "zero_trust_network_custom_services": {
                 "metrics": {"ports": [9100, 70000], "zones": ["cluster"]}}},
            ["zero_trust_network_custom_services.metrics.ports[1]: port 70000 is out of range"]),
        "unknown service": (
            {"zero_trust_network_services": ["hdfs"]},
            ["zero_trust_network_services[0]: unknown service 'hdfs'"]),
        "empty admin list": (
            {"zero_trust_network_zones": {**zones, "admin": []}},
            ["zero_trust_network_zones.admin is empty"]),
        "controller left out": (
            {"zero_trust_network_zones": {**zones, "admin": zones["cluster"]}},
            [f"The controller connects from {controller}", "zero_trust_network_zones.admin",
             "zero_trust_network_allow_controller_lockout"]),
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        runs = dict(zip(cases, pool.map(lambda c: play(lab, c[0]), cases.values()),
                        strict=True))
    for name, (_extra, expected) in cases.items():
        proc = runs[name]
        text = re.sub(r"\s+", " ", proc.stdout)
        assert proc.returncode != 0, (name, proc.stdout)
        for fragment in expected:
            assert fragment in text, (name, fragment, proc.stdout[-3000:])
        counts = recap(proc.stdout)
        assert counts["changed"] == 0 and counts["failed"] == 1, (name, counts)
    assert state(lab) == hardened


def test_check_mode_on_a_hardened_node_shows_a_change_and_changes_nothing(
        lab: LabHandle, hardened: tuple[str, str, str]) -> None:
    proc = play(lab, {"zero_trust_network_services": ["hiveserver2"]}, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"^\+\s+ip saddr @zone_clients_v4 tcp dport .*10000", proc.stdout,
                     re.MULTILINE), proc.stdout[-4000:]
    assert recap(proc.stdout)["changed"] > 0
    assert state(lab) == hardened


def test_lockout_override_rolls_back_within_the_timeout(
        lab: LabHandle, hardened: tuple[str, str, str], zones: dict[str, list[str]]) -> None:
    lab.ssh(NODE, "rm -f /var/lib/zero_trust_network/rolled-back")
    extra = {
        "zero_trust_network_zones": {**zones, "admin": zones["cluster"]},
        "zero_trust_network_allow_controller_lockout": True,
        "zero_trust_network_confirm_timeout": CONFIRM_TIMEOUT,
        "ansible_ssh_retries": 0,
        "ansible_timeout": 5,
    }
    started = time.monotonic()
    proc = play(lab, extra)
    ended = time.monotonic() - started
    text = re.sub(r"\s+", " ", proc.stdout)
    assert proc.returncode != 0, proc.stdout
    assert "zero_trust_network_allow_controller_lockout is true" in text
    assert "The controller could not open a new SSH connection" in text, proc.stdout[-3000:]
    # the confirmation over a new SSH connection failed: the controller was cut off, until
    # the timer restored the previous ruleset
    netlab.wait_for_ssh(lab, NODE, CONFIRM_TIMEOUT + 60)
    back = time.monotonic() - started
    assert back - ended <= CONFIRM_TIMEOUT + 15, f"SSH back {back - ended:.0f} s after the play"
    times = lab.ssh(NODE, "cd /var/lib/zero_trust_network && date -u -d \"$(cat armed)\" +%s && "
                          "date -u -d \"$(cat rolled-back)\" +%s")
    armed, rolled_back = (int(t) for t in times.stdout.split())
    assert CONFIRM_TIMEOUT - 2 <= rolled_back - armed <= CONFIRM_TIMEOUT + 3, (armed, rolled_back)
    # the live ruleset and the persisted file are the previous ones (the staged file keeps the
    # refused ruleset; the next run replaces it)
    assert state(lab)[:2] == hardened[:2]
    print(f"\nplay ended (controller cut off) at {ended:.0f} s; rollback "
          f"{rolled_back - armed} s after arming; SSH back at {back:.0f} s")


def audit_node(lab: LabHandle, out: Path) -> dict[str, dict[str, Any]]:
    lab.m7guard("audit", "-i", str(lab.inventory), "--limit", NODE, "--out", str(out),
                check=False)
    return {r["rule"]: r for r in Results.load(out / "results.json").results}


def test_egress_drop_allows_only_the_allow_lists(
        lab: LabHandle, hardened: tuple[str, str, str], tmp_path: Path) -> None:
    client = netlab.inventory_vars(lab, ("client1",))["client1"].addresses["clients"]
    targets = [(client[f], port) for f in ("ipv4", "ipv6") for port in (443, 4444)]
    netlab.install_simulator(lab, "client1", {443, 4444})
    try:
        open_before = netlab.probe_from(lab, NODE, targets)
        assert set(open_before.values()) == {"open"}, open_before
        kms = [f"{client['ipv4']}/32", f"{client['ipv6']}/128"]
        try:
            play(lab, {"zero_trust_network_egress_policy": "drop",
                       "zero_trust_network_egress_kms": kms}, check=True)
            after = netlab.probe_from(lab, NODE, targets)
            cells = audit_node(lab, tmp_path / "drop")
        finally:
            play(lab, check=True)
    finally:
        netlab.remove_simulator(lab, "client1")
    assert after == {f"{client['ipv4']} 443": "open", f"{client['ipv6']} 443": "open",
                     f"{client['ipv4']} 4444": "timeout", f"{client['ipv6']} 4444": "timeout"}
    assert cells["NET-010"]["state"] == "pass", cells["NET-010"]
    assert cells["NET-001"]["state"] == "pass"
    assert state(lab) == hardened
