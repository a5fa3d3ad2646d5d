"""`m7guard preflight` on the example inventory and on broken copies of it.

Each broken inventory changes one thing the way an operator could get it wrong; preflight
must exit 2 and name the host and the variable. The example itself must pass.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from moto_deployments import Deployment

from m7guard.cli import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "example"
PLAYS = ROOT / "tests" / "fixtures" / "preflight" / "all-roles.yml"


def preflight(inventory: Path, out: Path, *args: str) -> tuple[int, str, dict]:
    result = CliRunner().invoke(
        cli, ["preflight", "-i", str(inventory / "hosts.yml"), "--root", str(ROOT),
              "--playbook", str(PLAYS), "--out", str(out), "--format", "json,sarif,junit",
              *args],
        catch_exceptions=False,
    )
    data = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    return result.exit_code, result.output, data


def edit(path: Path, change: Callable[[dict], None]) -> None:
    doc = yaml.safe_load(path.read_text()) or {}
    change(doc)
    path.write_text("---\n" + yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    copy = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, copy)
    return copy


@pytest.mark.parametrize("profile", ["pci_dss", "baseline"])
def test_the_example_inventory_passes(tmp_path: Path, profile: str) -> None:
    code, output, data = preflight(EXAMPLE, tmp_path / "out", "--profile", profile)
    assert code == 0, output
    failing = [r for r in data["results"] if r["state"] in ("fail", "error")]
    assert failing == []
    evaluated = {r["rule"] for r in data["results"] if r["state"] == "pass"}
    expected = {"PRE-001", "PRE-004", "PRE-005", "PRE-007", "PRE-008", "PRE-009"}
    if profile == "pci_dss":  # MFA enrolment is required by the PCI profile only
        expected.add("PRE-006")
    else:  # syntax, lint and reboot are in no framework's profile, in the baseline
        expected |= {"PRE-002", "PRE-003", "PRE-010"}
    assert expected <= evaluated
    assert (tmp_path / "out" / "results.sarif").exists()


def test_every_report_format_renders_preflight_results(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["preflight", "-i", str(EXAMPLE / "hosts.yml"), "--root", str(ROOT),
              "--playbook", str(PLAYS), "--out", str(tmp_path), "--format", "all"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text()
    # preflight's host facts are the roles each host gets and the controller's address
    assert "roles: " in html and "kerberos_mfa" in html
    for name in ("results.sarif", "junit.xml", "assessment-results.json", "m7guard.prom"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not list(tmp_path.glob(".*.tmp"))


def _vars(inv: Path, name: str) -> Path:
    return inv / "group_vars" / name


BROKEN: dict[str, tuple[Callable[[Path], None], str, list[str]]] = {
    "controller outside the SSH allow-list": (
        lambda inv: edit(_vars(inv, "all/network.yml"),
                         lambda d: d.update(zero_trust_network_controller_address="192.0.2.50")),
        "PRE-004", ["zero_trust_network_zones.admin", "192.0.2.50"],
    ),
    "world-open CLDB port": (
        lambda inv: edit(_vars(inv, "all/network.yml"),
                         lambda d: d.update(example_cluster_networks=["0.0.0.0/0"])),
        "PRE-005", ["zero_trust_network_zones.cluster", "0.0.0.0/0"],
    ),
    "admin without an MFA secret under the PCI profile": (
        lambda inv: edit(_vars(inv, "m7_nodes/kerberos_mfa.yml"),
                         lambda d: d["kerberos_mfa_admins"].append({"name": "carol"})),
        "PRE-006", ["kerberos_mfa_admins", "carol"],
    ),
    "RC4 enctype": (
        lambda inv: edit(_vars(inv, "m7_nodes/kerberos_mfa.yml"),
                         lambda d: d.update(kerberos_mfa_enctypes=["aes256-cts-hmac-sha1-96",
                                                                   "rc4-hmac"])),
        "PRE-007", ["kerberos_mfa_enctypes", "rc4-hmac"],
    ),
    "malformed KMS ARN": (
        lambda inv: edit(_vars(inv, "m7_nodes/field_encryption.yml"),
                         lambda d: d.update(field_encryption_kms_key_id=(
                             "arn:aws:kms:us-east-1:1234:key/not-a-key"))),
        "PRE-008", ["field_encryption_kms_key_id", "arn:aws:kms:us-east-1:1234:key/not-a-key"],
    ),
    "non-M7i instance type": (
        lambda inv: (inv / "hosts.yml").write_text(
            (inv / "hosts.yml").read_text().replace(
                "dn4: {ansible_host: 10.20.1.14, m7i_instance_type: m7i.4xlarge}",
                "dn4: {ansible_host: 10.20.1.14, m7i_instance_type: m6i.4xlarge}")),
        "PRE-009", ["m7i_instance_type", "m6i.4xlarge"],
    ),
    "the play reboots the host": (
        lambda inv: edit(_vars(inv, "m7_nodes/kernel_tuning.yml"),
                         lambda d: d.update(kernel_tuning_reboot_ok=True)),
        "PRE-010", ["kernel_tuning_reboot_ok"],
    ),
    "a role variable of the wrong kind": (
        lambda inv: edit(_vars(inv, "m7_nodes/kerberos_mfa.yml"),
                         lambda d: d.update(kerberos_mfa_idle_timeout="fifteen minutes")),
        "PRE-001", ["kerberos_mfa_idle_timeout"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_inventory_fails_naming_host_and_variable(
    inventory: Path, tmp_path: Path, case: str
) -> None:
    breaker, rule_id, words = BROKEN[case]
    breaker(inventory)
    # PRE-010 (a reboot in the change window) is in no framework's profile: the baseline's
    profile = "baseline" if rule_id == "PRE-010" else "pci_dss"
    code, output, data = preflight(inventory, tmp_path / "out", "--profile", profile,
                                   "--fail-on", "low")
    assert code == 2, output
    failing = [r for r in data["results"] if r["state"] == "fail"]
    assert {r["rule"] for r in failing} == {rule_id}, failing
    hosts = {r["host"] for r in failing}
    expect_hosts = {"dn4"} if case == "non-M7i instance type" else {f"dn{i}" for i in range(1, 6)}
    assert hosts == expect_hosts
    for r in failing:
        for word in words:
            assert word in r["message"], (word, r["message"])
    line = next(line for line in output.splitlines() if rule_id in line and "FAIL" in line)
    assert sorted(hosts)[0] in line


def test_fail_on_threshold_and_runtime_error(inventory: Path, tmp_path: Path) -> None:
    BROKEN["non-M7i instance type"][0](inventory)  # PRE-009 is low severity
    code, _, _ = preflight(inventory, tmp_path / "a", "--fail-on", "medium")
    assert code == 0
    code, _, _ = preflight(inventory, tmp_path / "b", "--fail-on", "low")
    assert code == 2
    (inventory / "hosts.yml").unlink()
    code, output, _ = preflight(inventory, tmp_path / "c")
    assert code == 1 and "not found" in output and "hosts.yml" in output


def _aws_inventory(tmp_path: Path, hosts: dict[str, str], key: str) -> Path:
    inv = tmp_path / "aws-inventory"
    shutil.copytree(EXAMPLE, inv)
    lines = ["---", "all:", "  children:", "    m7_nodes:", "      hosts:"]
    for name, ip in hosts.items():
        lines.append(f"        {name}: {{ansible_host: {ip}}}")
    (inv / "hosts.yml").write_text("\n".join(lines) + "\n")
    edit(inv / "group_vars" / "m7_nodes" / "field_encryption.yml",
         lambda d: d.update(field_encryption_kms_key_alias=key))
    return inv


AWS_RULES = {"PRE-011", "PRE-012", "PRE-013", "PRE-014", "PRE-015"}


def test_aws_findings_on_a_compliant_deployment(moto_aws: Deployment, tmp_path: Path) -> None:
    inv = _aws_inventory(tmp_path, {"good1": moto_aws.good_ips[0], "good2": moto_aws.good_ips[1]},
                         "alias/m7guard-good")
    code, output, data = preflight(inv, tmp_path / "out", "--aws", "--aws-region", "us-east-1",
                                   "--profile", "pci_dss")
    aws = [r for r in data["results"] if r["rule"] in AWS_RULES]
    assert {r["rule"] for r in aws} == AWS_RULES
    assert [r for r in aws if r["state"] != "pass"] == []
    assert code == 0, output


def test_aws_findings_on_a_non_compliant_deployment(moto_aws: Deployment, tmp_path: Path) -> None:
    inv = _aws_inventory(
        tmp_path,
        {"m6": moto_aws.bad_ips[0], "plain": moto_aws.bad_ips[1], "gone": moto_aws.missing_ip},
        "alias/m7guard-bad",
    )
    code, _, data = preflight(inv, tmp_path / "out", "--aws", "--aws-region", "us-east-1",
                                   "--profile", "pci_dss")
    assert code == 2
    found = {(r["host"], r["rule"]) for r in data["results"]
             if r["rule"] in AWS_RULES and r["state"] == "fail"}
    assert found == {
        ("m6", "PRE-011"),        # an m6i, not an M7i
        ("m6", "PRE-012"),        # IMDSv1 allowed
        # ("m6", "PRE-013") is not expected: moto encrypts a volume without KmsKeyId under a
        # default key it reports as customer managed, where AWS would use alias/aws/ebs.
        ("m6", "PRE-014"),        # CLDB ports and SSH open to the world
        ("plain", "PRE-013"),     # not encrypted at all
        ("gone", "PRE-011"), ("gone", "PRE-012"), ("gone", "PRE-013"), ("gone", "PRE-014"),
        ("controller", "PRE-015"),  # rotation off
    }
    passed = {(r["host"], r["rule"]) for r in data["results"]
              if r["rule"] in AWS_RULES and r["state"] == "pass"}
    assert passed == {("plain", "PRE-011"), ("plain", "PRE-012"), ("plain", "PRE-014"),
                      ("m6", "PRE-013")}


def test_extra_vars_override_the_inventory(tmp_path: Path) -> None:
    code, output, data = preflight(EXAMPLE, tmp_path / "out", "--profile", "pci_dss",
                                   "-e", "zero_trust_network_controller_address=198.51.100.7")
    assert code == 2, output
    assert {r["rule"] for r in data["results"] if r["state"] == "fail"} == {"PRE-004"}
    extra = tmp_path / "extra.yml"
    extra.write_text("---\nkerberos_mfa_enctypes: [des-cbc-crc]\n")
    code, _, data = preflight(EXAMPLE, tmp_path / "out2", "--profile", "pci_dss", "-e", f"@{extra}")
    assert code == 2
    assert {r["rule"] for r in data["results"] if r["state"] == "fail"} == {"PRE-007"}
