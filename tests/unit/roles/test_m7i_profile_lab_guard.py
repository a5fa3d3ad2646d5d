"""The lab never leaves the EC2 metadata endpoint in effect for a node.

The lab inventory is generated (m7guard lab up); group_vars next to it are committed. Both are
put together here for the default lab and a numbered one, and Ansible's own inventory
resolution must give every host a metadata endpoint on its loopback, above all the hosts whose
instance type is not pinned (they are the ones that would ask it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from m7guard.lab.inventory import build_inventory, render_inventory
from m7guard.lab.spec import spec_for

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DEFAULT = yaml.safe_load((ROOT / "roles/m7i_profile/defaults/main.yml").read_text())[
    "m7i_profile_imds_endpoint"]


@pytest.mark.parametrize("lab_id", [0, 4])
def test_every_lab_host_uses_a_loopback_metadata_endpoint(tmp_path: Path, lab_id: int) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(render_inventory(build_inventory(spec_for(lab_id), tmp_path / "ssh")))
    shutil.copytree(ROOT / "inventories/lab/group_vars", tmp_path / "group_vars")
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert len(hostvars) >= 8
    unpinned = [h for h, v in hostvars.items() if not v.get("m7i_instance_type")]
    assert unpinned, "the lab has nodes without a pinned type (client1, kdc, ...)"
    for host, hv in hostvars.items():
        endpoint = hv.get("m7i_profile_imds_endpoint", DEFAULT)
        assert endpoint != DEFAULT, f"{host} would use the EC2 metadata service"
        assert "169.254.169.254" not in endpoint and "fd00:ec2::254" not in endpoint
        assert endpoint.startswith(("http://127.", "http://[::1]")), (host, endpoint)


def test_the_role_refuses_the_ec2_endpoint_on_a_lab_node() -> None:
    """The role's own interlock: a lab node (m7guard_lab_kind) whose type is not pinned never
    gets to the metadata request with the EC2 endpoint."""
    tasks = yaml.safe_load((ROOT / "roles/m7i_profile/tasks/validate.yml").read_text())
    guard = next(t for t in tasks if "lab node" in t["name"])
    assert "m7guard_lab_kind is not defined" in guard["ansible.builtin.assert"]["that"]
    assert "169" in guard["ansible.builtin.assert"]["that"]
    main = yaml.safe_load((ROOT / "roles/m7i_profile/tasks/main.yml").read_text())
    order = [t["ansible.builtin.import_tasks"] for t in main if "ansible.builtin.import_tasks" in t]
    assert order.index("validate.yml") < order.index("instance_type.yml")
