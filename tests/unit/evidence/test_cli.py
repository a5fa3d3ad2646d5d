"""`m7guard evidence` usage errors (exit 1, never 2), the waivers file, and `m7guard audit
--evidence-bundle` end to end on this machine (ansible local connection, read-only)."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

from evidencekit import POLICIES, REPO, members, run, write_audit_dir

from m7guard.catalog.loader import catalog_digest


def test_usage_errors_exit_1(audit_dir: Path, make_key, pack, workdir: Path) -> None:
    private, public = make_key()
    bundle = pack(audit_dir, private)
    cases = [
        ["evidence", "verify", bundle],  # no key
        ["evidence", "verify", bundle, "--key", public, "--kms-key-id", "k"],
        ["evidence", "verify", workdir / "absent.tar.gz", "--key", public],
        ["evidence", "verify", bundle, "--key", private],  # a private key is not a public key
        ["evidence", "verify", bundle, "--key", workdir / "waivers.yml"],
        ["evidence", "verify"],
        ["evidence", "verify", bundle, "--key", public, "--bogus"],
        ["evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz"],  # no key
        ["evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz", "--key", public],
        ["evidence", "pack", workdir / "absent", "-o", workdir / "b.tar.gz", "--key", private],
        ["evidence", "pack", workdir, "-o", workdir / "b.tar.gz", "--key", private],
        ["evidence", "nosuch"],
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert not (workdir / "b.tar.gz").exists()


def test_a_waivers_file_without_the_applied_waiver_is_refused(
    audit_dir: Path, make_key, workdir: Path
) -> None:
    private, _ = make_key()
    other = workdir / "other.yml"
    other.write_text("---\nwaivers: []\n")
    result = run(
        "evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz", "--key", private,
        "--waivers", other, "--policies", POLICIES,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "does not hold the waiver of KERN-014 on node2" in result.output
    (workdir / "waivers.yml").unlink()  # the file the results name is gone
    result = run("evidence", "pack", audit_dir, "-o", workdir / "b.tar.gz", "--key", private)
    assert result.exit_code == 1 and "pass it with --waivers" in result.output


def test_results_without_waivers_pack_no_waivers_file(workdir: Path, make_key, pack) -> None:
    audit = write_audit_dir(workdir / "audit", waivers=[])
    private, public = make_key()
    bundle = pack(audit, private)
    files = members(bundle)
    assert not any(name.startswith("waivers") for name in files)
    assert run("evidence", "verify", bundle, "--key", public).exit_code == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_audit_writes_a_bundle_of_its_output(workdir: Path, make_key) -> None:
    private, public = make_key("ecdsa-p256")
    inventory = workdir / "hosts.yml"
    inventory.write_text(
        "---\nall:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"    ghost:\n      ansible_host: 127.0.0.1\n      ansible_port: {_closed_port()}\n"
    )
    out, bundle = workdir / "out", workdir / "audit.tar.gz"
    result = run(
        "audit", "-i", inventory, "--profile", "kernel", "--policies", POLICIES, "--out", out,
        "--format", "all", "--workers", "1", "--evidence-bundle", bundle,
        "--signing-key", private,
    )  # fmt: skip
    assert result.exit_code == 2, result.output  # ghost is unreachable
    assert f"evidence bundle: {bundle}" in result.output
    verified = run("evidence", "verify", bundle, "--key", public)
    assert verified.exit_code == 0, verified.output
    files = members(bundle)
    assert files["results.json"] == (out / "results.json").read_bytes()
    assert {"evidence/localhost.json", "evidence/ghost.json", "reports/report.html"} <= set(files)
    catalog = json.loads(files["catalog.json"])
    assert (catalog["digest"], catalog["recorded_by"]) == (catalog_digest(POLICIES), "audit")
    (inv,) = json.loads(files["inventory.json"])["inventory"]
    assert inv == {
        "source": str(inventory),
        "kind": "file",
        "sha256": hashlib.sha256(inventory.read_bytes()).hexdigest(),
    }


def test_audit_refuses_a_bundle_without_a_key_before_it_runs(workdir: Path) -> None:
    out = workdir / "out"
    result = run(
        "audit", "-i", REPO / "inventories" / "lab", "--out", out,
        "--evidence-bundle", workdir / "b.tar.gz",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--evidence-bundle needs --signing-key" in result.output
    assert not out.exists()
    result = run(
        "audit", "-i", REPO / "inventories" / "lab", "--out", out,
        "--evidence-bundle", workdir / "b.tar.gz", "--signing-key", workdir / "nokey",
    )  # fmt: skip
    assert result.exit_code == 1 and "cannot read signing key" in result.output
    assert not out.exists()


def test_audit_exits_1_when_the_bundle_cannot_be_written(workdir: Path, make_key) -> None:
    private, _ = make_key()
    inventory = workdir / "hosts.yml"
    inventory.write_text("---\nall:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    (workdir / "blocker").write_text("a file where the bundle's directory would be\n")
    out = workdir / "out"
    result = run(
        "audit", "-i", inventory, "--profile", "kernel", "--policies", POLICIES, "--out", out,
        "--format", "json,html", "--workers", "1",
        "--evidence-bundle", workdir / "blocker" / "audit.tar.gz", "--signing-key", private,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "cannot write" in result.output and "audit.tar.gz" in result.output
    assert (out / "results.json").is_file() and (out / "report.html").is_file()
