"""`m7guard audit` end to end on this machine (ansible local connection, read-only) and on a
host that cannot be reached. The lab-backed tests are in tests/integration/test_audit*.py."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from m7guard.results import Results

REPO = Path(__file__).resolve().parents[3]
POLICIES = str(REPO / "policies")


def test_every_format_is_written_and_results_cover_every_host_and_rule(local_audit: Path) -> None:
    names = {p.name for p in local_audit.iterdir()}
    assert {
        "results.json",
        "report.html",
        "junit.xml",
        "results.sarif",
        "assessment-results.json",
        "m7guard.prom",
    } <= names
    results = Results.load(local_audit / "results.json")
    assert results.data["schema_version"] == "1.0"
    assert sorted(results.hosts) == ["ghost", "localhost"]
    cells = {(r["host"], r["rule"]) for r in results.results}
    rules = {f"KERN-{n:03d}" for n in range(1, 17)}
    assert cells == {(h, r) for h in ("ghost", "localhost") for r in rules}


def test_unreachable_host_is_an_error_for_that_host_only(local_audit: Path) -> None:
    results = Results.load(local_audit / "results.json")
    by_host = results.by_host()
    assert {r["state"] for r in by_host["ghost"]} == {"error"}
    assert all("Connection refused" in r["message"] for r in by_host["ghost"])
    ghost = next(h for h in results.data["hosts"] if h["name"] == "ghost")
    assert ghost["reachable"] is False
    assert "error" not in {r["state"] for r in by_host["localhost"]}
    assert any("ghost: host unreachable" in w for w in results.data["warnings"])


def test_local_results_agree_with_proc(local_audit: Path) -> None:
    """A namespaced key's result follows the real running value on this machine."""
    results = Results.load(local_audit / "results.json")
    kern15 = next(
        r for r in results.results if r["host"] == "localhost" and r["rule"] == "KERN-015"
    )
    running = Path("/proc/sys/net/ipv4/tcp_syncookies").read_text().strip()
    (record,) = kern15["evidence"]["sysctl"]
    assert record["running"] == running
    if running != "1" or record["persisted"] != "1":
        assert kern15["state"] == "fail"
    else:
        assert kern15["state"] == "pass"


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [("low", 2), ("high", 2), ("critical", 2), ("none", 0)],
)
def test_exit_code_follows_fail_on(
    audit_cli, local_inventory: Path, tmp_path: Path, fail_on: str, code: int
) -> None:
    # ghost is unreachable: its rules are errors, which fail at every threshold (no rule of
    # the kernel profile is critical); only --fail-on none exits 0
    result = audit_cli(
        "-i",
        str(local_inventory),
        "--out",
        str(tmp_path),
        "--fail-on",
        fail_on,
        "--policies",
        POLICIES,
    )
    assert result.exit_code == code, result.output


def test_nothing_failing_exits_0_unless_nothing_passed(
    audit_cli, local_inventory: Path, tmp_path: Path
) -> None:
    """Passes (with notapplicable results) exit 0; only notapplicable results (a host kernel
    key on a container) prove nothing and exit 2."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "profiles/hostkernel.yml").write_text(
        "---\nid: hostkernel\ntitle: host kernel only\nframeworks: [soc2]\n"
        "select:\n  - ids: [KERN-003]\n"
    )
    result = audit_cli(
        "-i",
        str(local_inventory),
        "--limit",
        "localhost",
        "--profile",
        "hostkernel",
        "--out",
        str(tmp_path / "out"),
        "--policies",
        str(policies),
    )
    results = Results.load(tmp_path / "out/results.json")
    states = {r["state"] for r in results.results}
    assert states <= {"pass", "notapplicable"}
    assert result.exit_code == (0 if "pass" in states else 2), result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--waivers", "/nonexistent/w.yml"], "waivers file not found"),
        (["--limit", "nohost*"], "no host of"),
        (["--format", "pdf"], "unknown report format(s) pdf"),
    ],
)
def test_audit_that_cannot_run_exits_1(
    audit_cli, local_inventory: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = audit_cli(
        "-i", str(local_inventory), "--out", str(tmp_path), "--policies", POLICIES, *args
    )
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_missing_inventory_exits_1(audit_cli, tmp_path: Path) -> None:
    result = audit_cli(
        "-i", str(tmp_path / "none.yml"), "--out", str(tmp_path), "--policies", POLICIES
    )
    assert result.exit_code == 1
    assert "inventory" in result.output and "not found" in result.output


def test_invalid_catalog_exits_1(audit_cli, local_inventory: Path, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    rule = policies / "rules/kernel/KERN-001.yml"
    rule.write_text(rule.read_text().replace("severity: medium", "severity: urgent"))
    result = audit_cli(
        "-i", str(local_inventory), "--out", str(tmp_path / "o"), "--policies", str(policies)
    )
    assert result.exit_code == 1
    assert "KERN-001.yml: severity" in result.output


def test_waivers_are_applied_and_expired_ones_warned(
    audit_cli, local_inventory: Path, tmp_path: Path
) -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(
        "---\nwaivers:\n"
        "  - rule: KERN-008\n    hosts: 'local*'\n"
        "    justification: Forwarding needed by the lab bridge until CHG-7.\n"
        f"    expires: {tomorrow}\n    approver: ciso@example.com\n    ticket: CHG-7\n"
        "  - rule: KERN-009\n    hosts: '*'\n"
        "    justification: Old exception that ran out.\n"
        f"    expires: {yesterday}\n    approver: ciso@example.com\n"
    )
    out = tmp_path / "out"
    result = audit_cli(
        "-i",
        str(local_inventory),
        "--out",
        str(out),
        "--waivers",
        str(waivers),
        "--policies",
        POLICIES,
        "--format",
        "json,html,junit",
    )
    assert result.exit_code == 2
    results = Results.load(out / "results.json")
    kern8 = {r["host"]: r for r in results.results if r["rule"] == "KERN-008"}
    assert kern8["localhost"]["state"] == "waived"
    assert kern8["localhost"]["evaluated_state"] in ("pass", "fail")
    assert kern8["localhost"]["waiver"]["justification"].startswith("Forwarding needed")
    assert kern8["localhost"]["waiver"]["expires"] == tomorrow
    assert kern8["ghost"]["state"] == "error"  # the pattern does not cover ghost
    kern9 = [r for r in results.results if r["rule"] == "KERN-009"]
    assert all(r["state"] != "waived" and r["waiver"] is None for r in kern9)
    warnings = "\n".join(results.data["warnings"])
    assert f"expired on {yesterday}: KERN-009 was evaluated on localhost" in warnings
    assert "KERN-009 was evaluated on ghost" in warnings
    assert "expired on" in result.output
    listed = {(w["rule"], w["status"]) for w in results.data["waivers"]}
    assert listed == {("KERN-008", "applied"), ("KERN-009", "expired")}
    html = (out / "report.html").read_text()
    section = html.split('id="waivers"')[1].split('id="requirements"')[0]
    assert "Forwarding needed by the lab bridge until CHG-7." in section
    assert tomorrow in section and "EXPIRED: rule evaluated" in section
    junit = (out / "junit.xml").read_text()
    assert f"waived until {tomorrow} by ciso@example.com" in junit


def test_report_command_renders_from_results(local_audit: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from m7guard.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "report",
            str(local_audit / "results.json"),
            "--format",
            "junit,prom",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "m7guard.prom"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": "0.1"}))
    result = CliRunner().invoke(cli, ["report", str(bad)])
    assert result.exit_code == 1 and "schema_version '0.1' is not '1.0'" in result.output
