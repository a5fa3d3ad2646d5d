"""The lab's generated inventory: groups, addresses and what Ansible makes of it."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import yaml

from m7guard.lab.inventory import build_inventory, known_hosts_lines, render_inventory
from m7guard.lab.spec import ALL_GROUPS, LabSpec

SPEC = LabSpec()


def _inventory(tmp_path: Path, include_vm: bool = True) -> dict:
    return build_inventory(SPEC, tmp_path / "ssh", include_vm=include_vm)


def test_every_group_later_roles_use_is_present(tmp_path: Path) -> None:
    children = _inventory(tmp_path)["all"]["children"]
    assert set(children) == set(ALL_GROUPS)
    assert set(children["m7_nodes"]["hosts"]) == {"node1", "node2", "node3", "vm1"}
    assert set(children["cldb"]["hosts"]) == {"node1"}
    assert set(children["zookeeper"]["hosts"]) == {"node1"}
    assert set(children["fileserver"]["hosts"]) == {"node1", "node2", "node3"}
    assert set(children["clients"]["hosts"]) == {"client1"}
    assert set(children["untrusted"]["hosts"]) == {"outsider"}
    assert set(children["kdcs"]["hosts"]) == {"kdc"}
    assert set(children["collectors"]["hosts"]) == {"collector"}
    assert set(children["vm"]["hosts"]) == {"vm1"}


def test_without_vm_there_is_no_vm_host_or_group(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, include_vm=False)["all"]
    assert "vm1" not in inv["hosts"]
    assert "vm" not in inv["children"]
    assert "vm1" not in inv["children"]["m7_nodes"]["hosts"]


def test_data_nodes_carry_a_mix_of_m7i_sizes(tmp_path: Path) -> None:
    hosts = _inventory(tmp_path)["all"]["hosts"]
    sizes = {hosts[n]["m7i_instance_type"] for n in ("node1", "node2", "node3", "vm1")}
    assert all(s.startswith("m7i.") for s in sizes)
    assert {"m7i.2xlarge", "m7i.8xlarge"} <= sizes
    for name in ("client1", "outsider", "kdc", "collector"):
        assert "m7i_instance_type" not in hosts[name]


def test_addresses_are_unique_and_inside_their_zone(tmp_path: Path) -> None:
    hosts = _inventory(tmp_path)["all"]["hosts"]
    seen: set[str] = set()
    for name, hv in hosts.items():
        if hv["m7guard_lab_kind"] != "container":
            continue
        for zone, addrs in hv["m7guard_lab_addresses"].items():
            net = SPEC.network(zone)
            assert ipaddress.ip_address(addrs["ipv4"]) in net.ipv4, (name, zone)
            assert ipaddress.ip_address(addrs["ipv6"]) in net.ipv6, (name, zone)
            assert addrs["ipv4"] not in seen and addrs["ipv6"] not in seen
            seen |= {addrs["ipv4"], addrs["ipv6"]}
            assert addrs["ipv4"] != str(net.gateway4)


def test_data_nodes_are_reached_through_the_admin_zone(tmp_path: Path) -> None:
    hosts = _inventory(tmp_path)["all"]["hosts"]
    for name in ("node1", "node2", "node3", "kdc"):
        assert hosts[name]["ansible_host"] == hosts[name]["m7guard_lab_addresses"]["admin"]["ipv4"]
    assert hosts["vm1"]["ansible_host"] == "127.0.0.1"
    assert hosts["vm1"]["ansible_port"] == SPEC.vm.ssh_port


def test_lab_subnets_do_not_overlap() -> None:
    nets = [n.ipv4 for n in SPEC.networks] + [n.ipv6 for n in SPEC.networks]
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            assert a.version != b.version or not a.overlaps(b)


def test_ssh_settings_point_at_the_lab_key_and_known_hosts(tmp_path: Path) -> None:
    allvars = _inventory(tmp_path)["all"]["vars"]
    assert allvars["ansible_ssh_private_key_file"] == str(tmp_path / "ssh" / "id_ed25519")
    assert f"UserKnownHostsFile={tmp_path / 'ssh' / 'known_hosts'}" in allvars[
        "ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in allvars["ansible_ssh_common_args"]
    assert allvars["ansible_control_path_dir"] == str(tmp_path / "ssh" / "cp")
    assert allvars["m7guard_lab_controller_addresses"][0] == "10.231.3.1"


def test_rendered_inventory_is_what_ansible_reads(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(render_inventory(_inventory(tmp_path)))
    assert yaml.safe_load(path.read_text())["all"]["hosts"]["node1"]["ansible_host"]
    out = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(path), "--list"],
        capture_output=True, text=True, check=True,
    )
    parsed = json.loads(out.stdout)
    assert sorted(parsed["m7_nodes"]["hosts"]) == ["node1", "node2", "node3", "vm1"]
    assert parsed["_meta"]["hostvars"]["node2"]["m7i_instance_type"] == "m7i.2xlarge"
    assert parsed["_meta"]["hostvars"]["node1"]["ansible_host"] == "10.231.3.11"


def test_known_hosts_lines_are_sorted_and_one_per_address() -> None:
    text = known_hosts_lines(
        {"[127.0.0.1]:2231": "ssh-ed25519 BBB", "10.0.0.1": "ssh-ed25519 AAA\n"}
    )
    assert text == "10.0.0.1 ssh-ed25519 AAA\n[127.0.0.1]:2231 ssh-ed25519 BBB\n"


def test_numbered_labs_do_not_collide() -> None:
    from m7guard.lab.spec import spec_for

    specs = [spec_for(i) for i in range(10)]
    assert specs[0] == SPEC
    assert len({s.name for s in specs}) == 10
    assert len({s.vm.ssh_port for s in specs}) == 10
    nets = [n.ipv4 for s in specs for n in s.networks]
    assert len(nets) == len(set(nets))
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_lab_id_out_of_range_is_refused() -> None:
    import pytest

    from m7guard.lab.spec import spec_for

    with pytest.raises(ValueError, match="M7GUARD_LAB_ID"):
        spec_for(10)
