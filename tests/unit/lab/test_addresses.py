"""Container nodes keep their addresses across `lab reset`: the IP addresses, and the MAC
address of each zone, so that the neighbours' caches stay right for a replaced node."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from m7guard.lab import manager, podman
from m7guard.lab.manager import Lab, UpReport, default_paths
from m7guard.lab.spec import MAX_LAB_ID, spec_for


def _macs(lab_id: int) -> dict[str, tuple[str, str]]:
    spec = spec_for(lab_id)
    return {spec.mac(node, zone): (node.name, zone)
            for node in spec.containers for zone in node.zones}


def test_every_zone_of_every_lab_gives_a_node_its_own_locally_administered_mac() -> None:
    seen: dict[str, tuple[int, str, str]] = {}
    for lab_id in range(MAX_LAB_ID + 1):
        spec = spec_for(lab_id)
        for node in spec.containers:
            for zone in node.zones:
                mac = spec.mac(node, zone)
                first = int(mac.split(":")[0], 16)
                assert first & 0b11 == 0b10, mac  # locally administered, unicast
                assert len(mac.split(":")) == 6, mac
                assert mac not in seen, (mac, seen.get(mac), (lab_id, node.name, zone))
                seen[mac] = (lab_id, node.name, zone)
    # the MAC carries the zone's IPv4 address, so it follows the address and nothing else
    spec = spec_for(0)
    for mac, (name, zone) in _macs(0).items():
        packed = spec.address4(spec.container(name), zone).packed
        assert bytes.fromhex(mac.replace(":", ""))[2:] == packed, (mac, name, zone)


class _Podman:
    """podman as `_ensure_container` calls it: no container yet; records the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")


def test_the_container_is_created_with_the_fixed_addresses_of_each_zone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Podman()
    monkeypatch.setattr(podman, "podman", fake)
    monkeypatch.setattr(podman, "container_state", lambda _name: None)
    monkeypatch.setattr(manager.Lab, "_start", lambda self, cname: None)
    lab = Lab(default_paths(tmp_path), say=lambda _m: None)
    node = lab.spec.container("node1")
    lab._ensure_container(node, "localhost/m7guard-node:test", UpReport())
    (create,) = [c for c in fake.calls if c[0] == "create"]
    networks = [create[i + 1] for i, arg in enumerate(create) if arg == "--network"]
    assert len(networks) == len(node.zones)
    for zone in node.zones:
        net = lab.spec.network(zone).podman_name(lab.spec.name)
        assert (f"{net}:ip={lab.spec.address4(node, zone)},ip={lab.spec.address6(node, zone)},"
                f"mac={lab.spec.mac(node, zone)}") in networks


def _running(labels: dict[str, str]) -> dict[str, Any]:
    return {"Config": {"Labels": labels}, "State": {"Running": True}}


def test_lab_up_replaces_a_running_container_made_with_other_addresses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container of the current image but made without the fixed MACs (an older m7guard)
    is replaced; one made with the current addresses is left as it is."""
    tag = "localhost/m7guard-node:test"
    fake = _Podman()
    removed: list[str] = []
    monkeypatch.setattr(podman, "podman", fake)
    monkeypatch.setattr(podman, "remove_container", removed.append)
    monkeypatch.setattr(manager.Lab, "_start", lambda self, cname: None)
    lab = Lab(default_paths(tmp_path), say=lambda _m: None)
    node = lab.spec.container("node1")

    monkeypatch.setattr(podman, "container_state",
                        lambda _name: _running({"m7guard.image": tag}))
    report = UpReport()
    lab._ensure_container(node, tag, report)
    assert removed == [lab.spec.container_name(node)]
    (create,) = [c for c in fake.calls if c[0] == "create"]
    labels = dict(create[i + 1].split("=", 1) for i, arg in enumerate(create)
                  if arg == "--label" and "=" in create[i + 1])
    assert report.created == ["node1"] and "m7guard.networks" in labels

    # the container just made (its labels) is current: a second `lab up` keeps it
    fake.calls.clear()
    removed.clear()
    monkeypatch.setattr(podman, "container_state", lambda _name: _running(labels))
    again = UpReport()
    lab._ensure_container(node, tag, again)
    assert removed == [] and fake.calls == [] and again.unchanged == ["node1"]
