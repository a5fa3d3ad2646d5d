"""The proof matrix (issue 13): every rule of the shipped catalog has a fail-proof and a
pass-proof in the suite, and `m7guard catalog validate` fails on a rule without one, on a
proof naming a test or a rule that does not exist, and when it cannot find the proofs."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from m7guard.catalog import load_catalog
from m7guard.catalog.proof import Proof, load_proofs, matrix, node_id_problem, proof_problems
from m7guard.cli import cli

ROOT = Path(__file__).resolve().parents[3]
TESTS = ROOT / "tests"


def test_every_shipped_rule_has_a_fail_proof_and_a_pass_proof() -> None:
    catalog = load_catalog()
    proofs = load_proofs(TESTS)
    assert proof_problems(catalog, proofs, TESTS) == []
    rows = matrix(catalog, proofs)
    assert [row.rule for row in rows] == sorted(catalog.rules)
    assert all(row.proven for row in rows)
    # the battery's lab runs are the fail-proofs of most host rules
    battery = {p.rule for p in proofs if "mutation_battery" in p.test and p.breaks}
    print(f"\nproof matrix: {len(rows)} rules proven; {len(battery)} by the battery's breaks")
    assert len(battery) >= 56


def _suite(tmp_path: Path, body: str) -> Path:
    """A test suite beside a copy of nothing but the real suite's tests (linked), whose
    proofs.py changes the real proofs as body says (a function edit(proofs) -> proofs)."""
    tests = tmp_path / "project" / "tests"
    tests.mkdir(parents=True)
    for name in ("unit", "integration", "battery"):
        (tests / name).symlink_to(TESTS / name)
    (tests / "proofs.py").write_text(textwrap.dedent(f"""\
        import importlib.util

        from m7guard.catalog.proof import Proof

        _spec = importlib.util.spec_from_file_location("_real_proofs", {str(TESTS / "proofs.py")!r})
        _real = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_real)

        """) + textwrap.dedent(body) + "\n\ndef proofs():\n    return edit(_real.proofs())\n")
    return tests


def _validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["catalog", "validate", *args])
    return result.exit_code, result.output


def test_validate_passes_the_shipped_catalog_with_its_proofs() -> None:
    code, output = _validate("--tests", str(TESTS))
    assert code == 0, output
    assert "every rule has a fail-proof and a pass-proof" in output


def test_validate_fails_on_a_rule_without_a_fail_proof(tmp_path: Path) -> None:
    tests = _suite(tmp_path, """
        def edit(proofs):
            return [p for p in proofs if not (p.rule == "NET-001" and p.breaks)]
        """)
    code, output = _validate("--tests", str(tests))
    assert code == 1, output
    assert "tests/proofs.py: NET-001: no fail-proof" in output
    assert "NET-002" not in output


def test_validate_fails_on_a_rule_without_a_pass_proof(tmp_path: Path) -> None:
    tests = _suite(tmp_path, """
        def edit(proofs):
            return [p for p in proofs if not (p.rule == "PRE-010" and p.kind == "pass")]
        """)
    code, output = _validate("--tests", str(tests))
    assert code == 1 and "PRE-010: no pass-proof" in output, output


def test_validate_fails_on_a_proof_of_a_missing_test_or_rule(tmp_path: Path) -> None:
    tests = _suite(tmp_path, """
        GONE = "tests/unit/checks/test_sysctl.py::test_gone"

        def edit(proofs):
            return proofs + [
                Proof("KERN-001", "fail", "x", GONE, "unit"),
                Proof("KERN-001", "fail", "x", "tests/unit/nowhere.py::test_x", "unit"),
                Proof("XYZ-001", "fail", "x", GONE, "unit"),
            ]
        """)
    code, output = _validate("--tests", str(tests))
    assert code == 1, output
    assert "defines no function test_gone" in output
    assert "tests/unit/nowhere.py does not exist" in output
    assert "XYZ-001: a proof of a rule the catalog does not have" in output


def test_validate_without_the_suite_says_so_and_no_proof_is_explicit(tmp_path: Path) -> None:
    policies = tmp_path / "elsewhere" / "policies"
    shutil.copytree(ROOT / "policies", policies)
    code, output = _validate("--policies", str(policies), "--roles", str(ROOT / "roles"))
    assert code == 1, output
    assert "no proofs" in output and "--tests DIR" in output and "--no-proof" in output
    code, output = _validate("--policies", str(policies), "--roles", str(ROOT / "roles"),
                             "--no-proof")
    assert code == 0, output
    assert "proofs not checked (--no-proof)" in output


def test_a_broken_proofs_file_is_a_clear_error(tmp_path: Path) -> None:
    tests = _suite(tmp_path, """
        def edit(proofs):
            return proofs + ["not a proof"]
        """)
    code, output = _validate("--tests", str(tests))
    assert code == 1 and "returns str, not Proof" in output, output


def test_catalog_proof_prints_the_matrix() -> None:
    result = CliRunner().invoke(cli, ["catalog", "proof", "--tests", str(TESTS),
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rules"] == data["proven"] == len(load_catalog().rules)
    assert data["problems"] == []
    one = CliRunner().invoke(cli, ["catalog", "proof", "--tests", str(TESTS), "--rule",
                                   "aud-002", "--format", "json"])
    (row,) = json.loads(one.output)["matrix"]
    assert row["rule"] == "AUD-002" and len(row["fail"]) >= 5 and row["pass"]


def test_catalog_proof_exits_1_naming_an_unproven_rule(tmp_path: Path) -> None:
    tests = _suite(tmp_path, """
        def edit(proofs):
            return [p for p in proofs if p.rule != "IDN-009"]
        """)
    result = CliRunner().invoke(cli, ["catalog", "proof", "--tests", str(tests)])
    assert result.exit_code == 1
    assert "IDN-009: no fail-proof" in result.output


def test_a_proof_kind_is_fail_error_or_pass() -> None:
    with pytest.raises(ValueError, match="kind"):
        Proof("KERN-001", "maybe", "x", "tests/unit/x.py::test_x", "unit")


@pytest.mark.parametrize(("node_id", "wrong"), [
    ("tests/unit/catalog/test_proof.py::test_a_proof_kind_is_fail_error_or_pass", None),
    ("tests/unit/catalog/test_proof.py::test_a_proof_kind_is_fail_error_or_pass[x]", None),
    ("tests/unit/catalog/test_proof.py", "is not a pytest node id"),
    ("tests/unit/catalog/test_proof.py::test_none_such", "defines no function"),
])
def test_node_ids_are_checked_against_the_file(node_id: str, wrong: str | None) -> None:
    found = node_id_problem(node_id, ROOT)
    assert (found is None) if wrong is None else (wrong in found)


def test_every_parametrized_proof_id_is_collected_by_pytest() -> None:
    """The node ids with parameters ([PRE-010], [the play reboots the host]) name test
    cases pytest really collects; node_id_problem checks the function only."""
    import subprocess
    import sys

    ids = sorted({p.test for p in load_proofs(TESTS) if "[" in p.test})
    files = sorted({i.split("::")[0] for i in ids})
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:randomly", *files], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    collected = {line.strip() for line in proc.stdout.splitlines()}
    assert ids and [i for i in ids if i not in collected] == [], proc.stdout[-2000:]
