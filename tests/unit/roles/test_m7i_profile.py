"""m7i_profile's size table against the reference, for all eleven M7i sizes.

The expected rows are typed in here from the reference (EC2 instance-types guide as
corrected in the project's M7i notes), not computed from the table under test.
"""

from __future__ import annotations

import pytest
import yaml
from kernel_tuning_kit import ROOT, load_module, sizes

ROLE = ROOT / "roles" / "m7i_profile"

# type: vCPU, GiB, network baseline / burst Gbps, EBS baseline / burst Mbps, EFA, ENA Express
REFERENCE = {
    "m7i.large": (2, 8, 0.781, 12.5, 650, 10000, False, False),
    "m7i.xlarge": (4, 16, 1.562, 12.5, 1250, 10000, False, False),
    "m7i.2xlarge": (8, 32, 3.125, 12.5, 2500, 10000, False, False),
    "m7i.4xlarge": (16, 64, 6.25, 12.5, 5000, 10000, False, False),
    "m7i.8xlarge": (32, 128, 12.5, 12.5, 10000, 10000, False, False),
    "m7i.12xlarge": (48, 192, 18.75, 18.75, 15000, 15000, False, True),
    "m7i.16xlarge": (64, 256, 25.0, 25.0, 20000, 20000, False, True),
    "m7i.24xlarge": (96, 384, 37.5, 37.5, 30000, 30000, False, True),
    "m7i.metal-24xl": (96, 384, 37.5, 37.5, 30000, 30000, False, True),
    "m7i.48xlarge": (192, 768, 50.0, 50.0, 40000, 40000, True, True),
    "m7i.metal-48xl": (192, 768, 50.0, 50.0, 40000, 40000, True, True),
}


def test_the_table_has_exactly_the_eleven_sizes() -> None:
    assert sorted(sizes.known_types()) == sorted(REFERENCE)
    assert len(sizes.known_types()) == 11


@pytest.mark.parametrize("instance_type", sorted(REFERENCE))
def test_profile_matches_the_reference(instance_type: str) -> None:
    vcpus, gib, base, burst, ebs, ebs_burst, efa, ena = REFERENCE[instance_type]
    p = sizes.profile(instance_type)
    assert (p["vcpus"], p["memory_gib"], p["memory_mib"]) == (vcpus, gib, gib * 1024)
    assert (p["network_baseline_gbps"], p["network_burst_gbps"]) == (base, burst)
    assert (p["ebs_baseline_mbps"], p["ebs_burst_mbps"]) == (ebs, ebs_burst)
    assert (p["efa"], p["ena_express"]) == (efa, ena)
    assert p["network_burstable"] is (burst > base)
    assert p["numa_nodes"] == (2 if vcpus == 192 else 1)
    assert p["instance_store"] is False
    assert "Sapphire Rapids" in p["processor"] and "DDR5" in p["processor"]
    assert p["metal"] is instance_type.startswith("m7i.metal")
    assert p["generic"] is False and p["source"] == "inventory"


def test_seed_errors_are_not_in_the_table() -> None:
    """The seed's claims the reference corrects: small sizes burst, they do not sustain 12.5;
    EFA only on the 48xl sizes; Ice Lake / DDR4 nowhere."""
    for name in ("m7i.large", "m7i.xlarge", "m7i.2xlarge", "m7i.4xlarge"):
        assert sizes.profile(name)["network_baseline_gbps"] < 12.5
    assert {t for t in REFERENCE if sizes.profile(t)["efa"]} == {"m7i.48xlarge", "m7i.metal-48xl"}
    assert all("Ice Lake" not in sizes.profile(t)["processor"] for t in REFERENCE)


def test_type_is_normalised() -> None:
    assert sizes.profile("  M7i.2XLarge ", "imds")["instance_type"] == "m7i.2xlarge"
    assert sizes.profile("m7i.2xlarge", "imds")["source"] == "imds"


@pytest.mark.parametrize("bad", ["m6i.large", "m7i-flex.large", "m7i.96xlarge", "", None, "large"])
def test_unknown_type_fails_listing_the_known_ones(bad: object) -> None:
    with pytest.raises(sizes.UnknownInstanceTypeError) as info:
        sizes.profile(bad)
    message = str(info.value)
    for known in REFERENCE:
        assert known in message
    assert "m7i_profile_allow_generic" in message


def test_generic_sizing_uses_the_host() -> None:
    host = {"vcpus": 6, "memory_mib": 12288, "numa_nodes": 1, "network_gbps": 10}
    p = sizes.profile("c5.xlarge", "inventory", allow_generic=True, host=host)
    assert p["generic"] is True
    assert (p["vcpus"], p["memory_mib"], p["network_baseline_gbps"]) == (6, 12288, 10.0)
    assert p["efa"] is False and p["ena_express"] is False
    assert p["family"] == "c5"


@pytest.mark.parametrize("field", ["vcpus", "memory_mib", "numa_nodes", "network_gbps"])
def test_generic_sizing_refuses_missing_or_negative_host_values(field: str) -> None:
    host = {"vcpus": 2, "memory_mib": 4096, "numa_nodes": 1, "network_gbps": 5}
    host[field] = -1
    with pytest.raises(ValueError, match=field):
        sizes.profile("t3.medium", allow_generic=True, host=host)


def test_filter_errors_name_the_variable() -> None:
    """The role's filters are m7guard.m7i's functions, with Ansible's error naming the
    role's variable."""
    from ansible.errors import AnsibleFilterError

    plugin = load_module("m7i_profile_filters", ROOT / "plugins" / "filter" / "m7i_profile.py")
    filters = plugin.FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match=r"^m7i_profile_instance_type: 'm5\.large'"):
        filters["m7i_profile_of"]("m5.large")
    assert filters["m7i_profile_known_types"]("") == sizes.known_types()
    assert filters["m7i_profile_looks_like_type"]("m7i.large")
    assert not filters["m7i_profile_looks_like_type"]("<html>")


def test_argument_specs_cover_the_defaults() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        if name != "m7i_profile_instance_type":  # defaults to the inventory's variable
            assert options[name]["default"] == value, name
    assert defaults["m7i_profile_imds_endpoint"] == "http://169.254.169.254"
