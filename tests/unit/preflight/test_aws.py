"""AWS facts for preflight, read from a moto server over HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
from moto_deployments import Deployment

from m7guard.preflight.aws import AwsView, world_open_rules


def test_compliant_instances_read_as_such(moto_aws: Deployment) -> None:
    view = AwsView(region="us-east-1")
    for ip in moto_aws.good_ips:
        facts = view.instance_facts("h", None, ip)
        assert facts.error is None
        assert facts.instance_type and facts.instance_type.startswith("m7i.")
        assert facts.imds_tokens == "required"
        assert facts.volumes and all(v["encrypted"] for v in facts.volumes)
        assert all(v["key_manager"] == "CUSTOMER" for v in facts.volumes)
        assert facts.world_open == []


def test_non_compliant_instances_show_each_fault(moto_aws: Deployment) -> None:
    view = AwsView(region="us-east-1")
    m6 = view.instance_facts("h", None, moto_aws.bad_ips[0])
    assert m6.instance_type == "m6i.2xlarge"
    assert m6.imds_tokens == "optional"
    opened = {(w["cidr"], tuple(w["ports"])) for w in m6.world_open}
    assert ("0.0.0.0/0", (7220, 7221, 7222, 7223, 7224)) in opened
    assert ("::/0", (22,)) in opened
    plain = view.instance_facts("h", None, moto_aws.bad_ips[1])
    assert [v["encrypted"] for v in plain.volumes] == [False]


def test_missing_instance_is_reported(moto_aws: Deployment) -> None:
    facts = AwsView(region="us-east-1").instance_facts("h", None, moto_aws.missing_ip)
    assert facts.error == f"no EC2 instance with private address {moto_aws.missing_ip}"


def test_key_rotation(moto_aws: Deployment) -> None:
    view = AwsView(region="us-east-1")
    assert view.key_rotation("alias/m7guard-good") is True
    assert view.key_rotation(moto_aws.bad_key) is False


def test_unknown_key_is_a_clear_error(moto_aws: Deployment) -> None:
    from m7guard.preflight.aws import AwsCheckError

    with pytest.raises(AwsCheckError, match="DescribeKey alias/nope"):
        AwsView(region="us-east-1").key_rotation("alias/nope")


def test_world_open_rules_all_traffic_and_narrow_ranges() -> None:
    groups = [{"GroupId": "sg-1", "IpPermissions": [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 5660, "ToPort": 5660,
         "IpRanges": [{"CidrIp": "0.0.0.0/1"}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 5660, "ToPort": 5660,
         "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "203.0.113.0/24"}],
         "Ipv6Ranges": [{"CidrIpv6": "fd00::/8"}]},
    ]}]
    found = world_open_rules(groups)
    # 0.0.0.0/1 is half the internet: as open as 0.0.0.0/0 (issue 13); private and narrow
    # ranges are not the world, and port 80 is no cluster or admin port
    assert [f["cidr"] for f in found] == ["0.0.0.0/0", "0.0.0.0/1"]
    assert 22 in found[0]["ports"] and found[1]["ports"] == [5660]
