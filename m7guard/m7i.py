"""The EC2 M7i size table and the profile derived from an instance type: one definition, read by
the m7i_profile role's filters (plugins/filter/m7i_profile.py), by the checks that judge
size-derived values (m7guard.checks.support.sizing) and by preflight.

Pure Python with no dependency. The values come from the EC2 instance-types guide as corrected
in the project's reference notes: M7i is 4th Gen Xeon Scalable (Sapphire Rapids) with DDR5; sizes
up to 4xlarge have a network *baseline* well below their 12.5 Gbps burst; EFA only on
m7i.48xlarge and m7i.metal-48xl; no instance store (every NVMe device is an EBS volume).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PROCESSOR = "4th Gen Intel Xeon Scalable (Sapphire Rapids), DDR5, AVX-512, AMX"
FAMILY = "m7i"


@dataclass(frozen=True)
class Size:
    """One row of the size table."""

    instance_type: str
    vcpus: int
    memory_gib: int
    network_baseline_gbps: float
    network_burst_gbps: float
    ebs_baseline_mbps: int
    ebs_burst_mbps: int
    efa: bool
    ena_express: bool
    numa_nodes: int
    metal: bool = False


def _burstable(name: str, vcpus: int, gib: int, net: float, ebs: int) -> Size:
    return Size(name, vcpus, gib, net, 12.5, ebs, 10000, False, False, 1)


def _fixed(name: str, vcpus: int, gib: int, net: float, ebs: int, **kw: Any) -> Size:
    numa = 2 if vcpus >= 192 else 1  # one socket up to 96 vCPU, two at 192
    return Size(name, vcpus, gib, net, net, ebs, ebs, kw.get("efa", False),
                kw.get("ena_express", True), numa, kw.get("metal", False))


SIZES: tuple[Size, ...] = (
    _burstable("m7i.large", 2, 8, 0.781, 650),
    _burstable("m7i.xlarge", 4, 16, 1.562, 1250),
    _burstable("m7i.2xlarge", 8, 32, 3.125, 2500),
    _burstable("m7i.4xlarge", 16, 64, 6.25, 5000),
    _fixed("m7i.8xlarge", 32, 128, 12.5, 10000, ena_express=False),
    _fixed("m7i.12xlarge", 48, 192, 18.75, 15000),
    _fixed("m7i.16xlarge", 64, 256, 25.0, 20000),
    _fixed("m7i.24xlarge", 96, 384, 37.5, 30000),
    _fixed("m7i.metal-24xl", 96, 384, 37.5, 30000, metal=True),
    _fixed("m7i.48xlarge", 192, 768, 50.0, 40000, efa=True),
    _fixed("m7i.metal-48xl", 192, 768, 50.0, 40000, efa=True, metal=True),
)
BY_TYPE: dict[str, Size] = {s.instance_type: s for s in SIZES}
_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")


class UnknownInstanceTypeError(ValueError):
    """The instance type is not an M7i size (and generic sizing is not allowed)."""


def known_types() -> list[str]:
    """Every M7i instance type of the table, smallest first."""
    return [s.instance_type for s in SIZES]


def normalize_type(value: Any) -> str:
    return str(value if value is not None else "").strip().lower()


def _as_dict(size: Size, source: str) -> dict[str, Any]:
    return {
        "instance_type": size.instance_type,
        "family": FAMILY,
        "source": source,
        "generic": False,
        "processor": PROCESSOR,
        "vcpus": size.vcpus,
        "memory_gib": size.memory_gib,
        "memory_mib": size.memory_gib * 1024,
        "network_baseline_gbps": size.network_baseline_gbps,
        "network_burst_gbps": size.network_burst_gbps,
        "network_burstable": size.network_burst_gbps > size.network_baseline_gbps,
        "ebs_baseline_mbps": size.ebs_baseline_mbps,
        "ebs_burst_mbps": size.ebs_burst_mbps,
        "efa": size.efa,
        "ena_express": size.ena_express,
        "numa_nodes": size.numa_nodes,
        "metal": size.metal,
        "instance_store": False,
    }


def _positive(host: dict[str, Any], key: str, kind: type) -> Any:
    value = host.get(key)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValueError(f"generic sizing needs a positive {key}, got {value!r}")
    return number


def generic_profile(instance_type: str, host: dict[str, Any], source: str) -> dict[str, Any]:
    """A profile of a non-M7i host from what the host itself reports.

    `host` holds vcpus, memory_mib, numa_nodes (from the host) and network_gbps (from the
    operator). EFA and ENA Express are off and EBS bandwidth unknown (0).
    """
    vcpus = _positive(host, "vcpus", int)
    memory_mib = _positive(host, "memory_mib", int)
    numa = _positive(host, "numa_nodes", int)
    gbps = _positive(host, "network_gbps", float)
    return {
        "instance_type": instance_type or "unknown",
        "family": instance_type.split(".", 1)[0] if "." in instance_type else "unknown",
        "source": source,
        "generic": True,
        "processor": "unknown (generic sizing)",
        "vcpus": vcpus,
        "memory_gib": round(memory_mib / 1024, 1),
        "memory_mib": memory_mib,
        "network_baseline_gbps": gbps,
        "network_burst_gbps": gbps,
        "network_burstable": False,
        "ebs_baseline_mbps": 0,
        "ebs_burst_mbps": 0,
        "efa": False,
        "ena_express": False,
        "numa_nodes": numa,
        "metal": False,
        "instance_store": False,
    }


def profile(
    instance_type: Any,
    source: str = "inventory",
    allow_generic: bool = False,
    host: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The profile of `instance_type`; an unknown type raises UnknownInstanceTypeError
    listing the known ones, unless `allow_generic` (then `host` describes the machine)."""
    name = normalize_type(instance_type)
    size = BY_TYPE.get(name)
    if size is not None:
        return _as_dict(size, source)
    if allow_generic:
        return generic_profile(name, host or {}, source)
    shown = repr(str(instance_type)) if name else "no instance type"
    raise UnknownInstanceTypeError(
        f"{shown} is not an M7i instance type; known: {', '.join(known_types())} "
        "(set m7i_profile_allow_generic: true to size a non-M7i host from its own facts)"
    )


def looks_like_type(value: Any) -> bool:
    """Whether value has the shape of an EC2 instance type (family.size)."""
    return bool(_TYPE_RE.match(normalize_type(value)))
