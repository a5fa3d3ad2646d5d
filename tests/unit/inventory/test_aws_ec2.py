"""inventories/aws_ec2.yml (the amazon.aws.aws_ec2 inventory plugin) against EC2 instances
that the test creates on a moto server on 127.0.0.1.

Every command runs in a child process whose network guard refuses, and logs, any connection
or name lookup beyond the loopback: the tests end by checking that log is empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from inventorykit import REPO, ansible_inventory, guarded_env, m7guard, members
from motokit import moto_server

EXAMPLE = REPO / "inventories" / "aws_ec2.yml"
REGION = "us-east-1"
DATA = ["dn1", "dn2", "dn3", "dn4", "dn5"]
SIZES = {"dn1": "m7i.8xlarge", "dn2": "m7i.8xlarge", "dn3": "m7i.8xlarge",
         "dn4": "m7i.4xlarge", "dn5": "m7i.4xlarge"}
CORE = "cldb zookeeper fileserver"


@dataclass
class Ec2:
    endpoint: str
    ids: dict[str, str]
    addresses: dict[str, str]


@pytest.fixture(scope="module")
def ec2() -> Iterator[Ec2]:
    """Instances of the cluster m7-prod (five data nodes, a bastion without services, a
    stopped node), and a data node of another cluster, m7-lab, on an m6i."""
    with moto_server() as endpoint:
        client = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        vpc = client.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/22",
                                      AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
        image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ids: dict[str, str] = {}
        addresses: dict[str, str] = {}

        def launch(name: str, itype: str, ip: str, cluster: str, roles: str | None) -> None:
            tags = [{"Key": "Name", "Value": name}, {"Key": "m7guard-cluster", "Value": cluster}]
            if roles is not None:
                tags.append({"Key": "m7guard-roles", "Value": roles})
            reply = client.run_instances(
                ImageId=image, MinCount=1, MaxCount=1, InstanceType=itype, SubnetId=subnet,
                PrivateIpAddress=ip,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
            ids[name] = reply["Instances"][0]["InstanceId"]
            addresses[name] = ip

        for n, name in enumerate(DATA, start=1):
            launch(name, SIZES[name], f"10.20.1.1{n}", "m7-prod", CORE if n <= 3 else "fileserver")
        launch("bastion", "t3.micro", "10.20.0.10", "m7-prod", None)
        launch("dn6", "m7i.8xlarge", "10.20.1.16", "m7-prod", "fileserver")
        client.stop_instances(InstanceIds=[ids["dn6"]])
        launch("lab1", "m6i.2xlarge", "10.20.2.11", "m7-lab", "fileserver")
        yield Ec2(endpoint, ids, addresses)


def inventory_dir(tmp: Path, ec2: Ec2, cluster: str = "m7-prod") -> Path:
    """An inventory directory as docs/real-inventory.md lays it out: the example plugin
    configuration (pointed at moto, cluster `cluster`) beside the example's group_vars."""
    inv = tmp / f"inventory-{cluster}"
    (inv / "group_vars").mkdir(parents=True)
    for source in (REPO / "inventories" / "example" / "group_vars").iterdir():
        (inv / "group_vars" / source.name).symlink_to(source)
    config = yaml.safe_load(EXAMPLE.read_text())
    assert config["regions"], "the example must name its regions (no describe_regions call)"
    config["regions"] = [REGION]
    config["endpoint_url"] = ec2.endpoint
    config["filters"]["tag:m7guard-cluster"] = cluster
    (inv / "cluster.aws_ec2.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return inv


def nothing_left_loopback(log: Path) -> None:
    refused = log.read_text() if log.exists() else ""
    assert refused == "", f"requests beyond 127.0.0.1 were attempted:\n{refused}"


def test_the_example_gives_the_groups_and_variables_preflight_expects(
    ec2: Ec2, tmp_path: Path
) -> None:
    log = tmp_path / "netguard.log"
    source = inventory_dir(tmp_path, ec2) / "cluster.aws_ec2.yml"
    listing = ansible_inventory(guarded_env(log), "-i", str(source))
    data = set(DATA)
    assert members(listing, "all") == {*data, "bastion"}  # not dn6 (stopped), not lab1
    assert members(listing, "m7_nodes") == data
    assert members(listing, "cldb") == {"dn1", "dn2", "dn3"}
    assert members(listing, "zookeeper") == {"dn1", "dn2", "dn3"}
    assert members(listing, "fileserver") == data
    assert members(listing, "cluster_m7_prod") == {*data, "bastion"}
    assert members(listing, "type_m7i_4xlarge") == {"dn4", "dn5"}
    hostvars = listing["_meta"]["hostvars"]
    for name in [*DATA, "bastion"]:
        assert hostvars[name]["ansible_host"] == ec2.addresses[name]
        assert hostvars[name]["m7guard_ec2_instance_id"] == ec2.ids[name]
    assert {n: hostvars[n]["m7i_instance_type"] for n in DATA} == SIZES
    nothing_left_loopback(log)


def test_preflight_passes_the_dynamic_inventory_directory(
    ec2: Ec2, tmp_path: Path, quick_root: Path
) -> None:
    log = tmp_path / "netguard.log"
    inv = inventory_dir(tmp_path, ec2)
    out = tmp_path / "out"
    proc = m7guard(guarded_env(log), "preflight", "-i", str(inv), "--root", str(quick_root),
                   "--profile", "inventory", "--fail-on", "low", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["inventory"] == str(inv)
    hosts = {h["name"]: h for h in data["hosts"]}
    assert set(hosts) == {*DATA, "bastion"}
    # grouping: the tags put dn1-dn5 in m7_nodes, so the playbook gives them every role
    for name in DATA:
        assert "m7_nodes" in hosts[name]["groups"]
        assert "m7i_profile" in hosts[name]["facts"]["roles"]
    assert set(hosts["dn1"]["groups"]) >= {"cldb", "zookeeper", "fileserver"}
    assert hosts["bastion"]["facts"]["roles"] == []
    state = {(r["host"], r["rule"]): r for r in data["results"]}
    # sizing: the instance type from EC2 is the m7i_instance_type PRE-009 judges
    for name in DATA:
        pre009 = state[(name, "PRE-009")]
        assert pre009["state"] == "pass", pre009
        assert pre009["evidence"] == {"m7i_instance_type": SIZES[name]}
        assert state[(name, "PRE-001")]["state"] == "pass"
        assert state[(name, "PRE-004")]["state"] == "pass"
    assert state[("bastion", "PRE-009")]["state"] == "notapplicable"
    nothing_left_loopback(log)


def test_preflight_fails_a_data_node_that_is_not_m7i(
    ec2: Ec2, tmp_path: Path, quick_root: Path
) -> None:
    log = tmp_path / "netguard.log"
    inv = inventory_dir(tmp_path, ec2, cluster="m7-lab")
    out = tmp_path / "out"
    proc = m7guard(guarded_env(log), "preflight", "-i", str(inv), "--root", str(quick_root),
                   "--profile", "inventory", "--fail-on", "low", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    failing = {(r["host"], r["rule"]) for r in data["results"] if r["state"] == "fail"}
    assert failing == {("lab1", "PRE-009")}
    assert "m6i.2xlarge" in proc.stdout
    nothing_left_loopback(log)


def test_the_guard_sees_a_request_to_aws(ec2: Ec2, tmp_path: Path) -> None:
    """The guard works: the example as shipped (no endpoint_url) would call EC2 itself."""
    log = tmp_path / "netguard.log"
    source = tmp_path / "shipped.aws_ec2.yml"
    source.write_text(EXAMPLE.read_text())
    proc = m7guard(guarded_env(log), "preflight", "-i", str(source), "--out", str(tmp_path))
    assert proc.returncode == 1
    assert str(source) in proc.stderr
    assert "lookup 'ec2.us-east-1.amazonaws.com'" in log.read_text()


def test_audit_reads_the_dynamic_inventory(ec2: Ec2, tmp_path: Path) -> None:
    """`m7guard audit -i` the same directory: the checks get each instance's groups and its
    m7i_instance_type from EC2. A compose entry of this copy makes every connection local
    (this machine, read-only checks), so nothing is sent to the instances' 10.20.x addresses."""
    log = tmp_path / "netguard.log"
    inv = inventory_dir(tmp_path, ec2)
    config_path = inv / "cluster.aws_ec2.yml"
    config = yaml.safe_load(config_path.read_text())
    config["compose"]["ansible_connection"] = "'local'"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "out"
    proc = m7guard(guarded_env(log), "audit", "-i", str(inv), "--limit", "dn1,dn4",
                   "--profile", "tuning", "--fail-on", "none", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    hosts = {h["name"]: h for h in data["hosts"]}
    assert set(hosts) == {"dn1", "dn4"}
    for name, host in hosts.items():
        assert host["reachable"], host["error"]
        assert "m7_nodes" in host["groups"]
        typed = [r["evidence"] for r in data["results"]
                 if r["host"] == name and "inventory_type" in json.dumps(r["evidence"])]
        assert typed, f"no check of {name} read m7i_instance_type"
        assert all(SIZES[name] in json.dumps(e) for e in typed)
    nothing_left_loopback(log)


LISTING = """
import json, sys
from m7guard.inventory import load_inventory
json.dump(load_inventory(sys.argv[1]).listing(), sys.stdout)
"""


def test_the_checks_get_the_plugin_made_values_as_ansible_inventory_prints_them(
    ec2: Ec2, tmp_path: Path
) -> None:
    """The listing an audit hands its checks (Inventory.listing, from the audit's own parse)
    equals `ansible-inventory --list` on the same directory with ansible-core's marks of
    plugin-made values removed: the instances' addresses are plain strings."""
    log = tmp_path / "netguard.log"
    inv = inventory_dir(tmp_path, ec2)
    proc = subprocess.run([sys.executable, "-c", LISTING, str(inv)], env=guarded_env(log),
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert listing == ansible_inventory(guarded_env(log), "-i", str(inv))
    hostvars = listing["_meta"]["hostvars"]
    assert all(hostvars[n]["ansible_host"] == ec2.addresses[n] for n in DATA)
    assert "__ansible_unsafe" not in proc.stdout
    nothing_left_loopback(log)
