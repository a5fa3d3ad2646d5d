"""Two M7i deployments seeded into a moto server: one compliant, one not (test data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/m7guard-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/m7guard-tests/credentials",
}


@dataclass
class Deployment:
    good_ips: list[str]
    bad_ips: list[str]
    good_key: str
    bad_key: str
    missing_ip: str
    endpoint: str


def seed(ec2: Any, kms: Any, endpoint: str) -> Deployment:
    good_key = kms.create_key(Description="m7guard good")["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=good_key)
    kms.create_alias(AliasName="alias/m7guard-good", TargetKeyId=good_key)
    bad_key = kms.create_key(Description="m7guard bad")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/m7guard-bad", TargetKeyId=bad_key)

    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    good_sg = ec2.create_security_group(GroupName="good", Description="good", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=good_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 7222, "ToPort": 7222,
         "IpRanges": [{"CidrIp": "10.40.0.0/16"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ])
    bad_sg = ec2.create_security_group(GroupName="bad", Description="bad", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=bad_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 7000, "ToPort": 7300,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(ip: str, itype: str, sg: str, tokens: str, encrypted: bool,
               key: str | None) -> None:
        ebs: dict[str, Any] = {"VolumeSize": 100, "Encrypted": encrypted}
        if key:
            ebs["KmsKeyId"] = key
        ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType=itype, SubnetId=subnet,
            PrivateIpAddress=ip, SecurityGroupIds=[sg],
            MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": ebs}],
        )

    launch("10.40.1.11", "m7i.8xlarge", good_sg, "required", True, good_key)
    launch("10.40.1.12", "m7i.2xlarge", good_sg, "required", True, good_key)
    launch("10.40.1.21", "m6i.2xlarge", bad_sg, "optional", True, None)
    launch("10.40.1.22", "m7i.2xlarge", good_sg, "required", False, None)
    return Deployment(["10.40.1.11", "10.40.1.12"], ["10.40.1.21", "10.40.1.22"],
                      good_key, bad_key, "10.40.1.99", endpoint)
