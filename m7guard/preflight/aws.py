"""The AWS side of a deployment, read with boto3 (describe calls only; nothing is changed).

Each inventory host is matched to its EC2 instance by `m7guard_ec2_instance_id` when the
inventory sets it, otherwise by its private address (`ansible_host`). Findings are plain
data; preflight turns them into PRE-* results. boto3 honours AWS_ENDPOINT_URL, which is how
the tests point it at a moto server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from m7guard.errors import M7guardError
from m7guard.preflight.publicnet import world_open

M7I_PREFIX = "m7i."

# Data Fabric ports that must never face the internet (reference: mapr.md).
CLUSTER_PORTS: tuple[int, ...] = (
    7222, 7223, 7224, 5660, 5692, 5724, 5756, 5181, 2888, 3888, 9997, 9998, 111, 7660,
    8030, 8031, 8033, 8040, 8041, 13562, 9083, 4242, 9200, 9300,
)
ADMIN_PORTS: tuple[int, ...] = (22, 9443, 7221, 7220, 3000, 5601)


class AwsCheckError(M7guardError):
    """AWS could not be asked (credentials, endpoint, permissions)."""


@dataclass
class InstanceFacts:
    host: str
    instance_id: str | None = None
    instance_type: str | None = None
    imds_tokens: str | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    world_open: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class AwsView:
    """Read-only questions preflight asks of one AWS region."""

    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=region, profile_name=profile)
        if session.region_name is None:
            raise AwsCheckError(
                "no AWS region: pass --aws-region or set AWS_REGION / AWS_DEFAULT_REGION"
            )
        config = Config(retries={"max_attempts": 5, "mode": "adaptive"})
        self.ec2 = session.client("ec2", config=config)
        self.kms = session.client("kms", config=config)
        self._key_managers: dict[str, str] = {}

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise AwsCheckError(f"{what}: {err.get('Code')}: {err.get('Message')}") from exc
        except BotoCoreError as exc:
            raise AwsCheckError(f"{what}: {exc}") from exc

    def find_instance(self, host: str, instance_id: str | None,
                      address: str | None) -> dict[str, Any] | None:
        if instance_id:
            filters = [{"Name": "instance-id", "Values": [instance_id]}]
        elif address:
            filters = [{"Name": "private-ip-address", "Values": [address]}]
        else:
            return None
        filters.append({"Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"]})
        out = self._call(f"{host}: DescribeInstances", self.ec2.describe_instances,
                         Filters=filters)
        found = [i for r in out.get("Reservations", []) for i in r.get("Instances", [])]
        return found[0] if found else None

    def key_manager(self, key_id: str) -> str:
        if key_id not in self._key_managers:
            meta = self._call(f"DescribeKey {key_id}", self.kms.describe_key, KeyId=key_id)
            self._key_managers[key_id] = meta["KeyMetadata"].get("KeyManager", "")
        return self._key_managers[key_id]

    def instance_facts(self, host: str, instance_id: str | None,
                       address: str | None) -> InstanceFacts:
        facts = InstanceFacts(host)
        inst = self.find_instance(host, instance_id, address)
        if inst is None:
            how = f"instance id {instance_id}" if instance_id else f"private address {address}"
            facts.error = f"no EC2 instance with {how}"
            return facts
        facts.instance_id = inst["InstanceId"]
        facts.instance_type = inst.get("InstanceType")
        facts.imds_tokens = (inst.get("MetadataOptions") or {}).get("HttpTokens")
        vol_ids = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if "Ebs" in m]
        if vol_ids:
            vols = self._call(f"{host}: DescribeVolumes", self.ec2.describe_volumes,
                              VolumeIds=vol_ids)
            for vol in vols.get("Volumes", []):
                key = vol.get("KmsKeyId")
                facts.volumes.append({
                    "volume": vol["VolumeId"],
                    "encrypted": bool(vol.get("Encrypted")),
                    "kms_key": key,
                    "key_manager": self.key_manager(key) if key else None,
                })
        sg_ids = [g["GroupId"] for g in inst.get("SecurityGroups", [])]
        if sg_ids:
            groups = self._call(f"{host}: DescribeSecurityGroups",
                                self.ec2.describe_security_groups, GroupIds=sg_ids)
            facts.world_open = world_open_rules(groups.get("SecurityGroups", []))
        return facts

    def key_rotation(self, key_id: str) -> bool:
        meta = self._call(f"DescribeKey {key_id}", self.kms.describe_key, KeyId=key_id)
        real_id = meta["KeyMetadata"]["KeyId"]
        status = self._call(f"GetKeyRotationStatus {key_id}", self.kms.get_key_rotation_status,
                            KeyId=real_id)
        return bool(status.get("KeyRotationEnabled"))


def world_open_rules(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ingress rules that open a Data Fabric cluster or admin port to the world: to a range
    that holds more public addresses than a /16 (IPv4) or a /32 (IPv6), see publicnet."""
    sensitive = set(CLUSTER_PORTS) | set(ADMIN_PORTS)
    found: list[dict[str, Any]] = []
    for group in groups:
        for perm in group.get("IpPermissions", []):
            proto = perm.get("IpProtocol")
            if proto == "-1":
                ports = sensitive
            else:
                lo, hi = perm.get("FromPort", 0), perm.get("ToPort", 65535)
                ports = {p for p in sensitive if lo <= p <= hi}
            if not ports:
                continue
            ranges = [r.get("CidrIp") for r in perm.get("IpRanges", [])]
            ranges += [r.get("CidrIpv6") for r in perm.get("Ipv6Ranges", [])]
            for cidr in filter(None, ranges):
                if world_open(ipaddress.ip_network(cidr, strict=False)):
                    found.append({
                        "group": group.get("GroupId"),
                        "cidr": cidr,
                        "ports": sorted(ports),
                    })
    return found
