"""Pack and verify with Ed25519 and ECDSA P-256 key files: what the bundle holds, the signed
statement, and byte-identical output for the same input."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from evidencekit import POLICIES, envelope, members, run, write_audit_dir

from m7guard.catalog.loader import catalog_digest
from m7guard.reports import _renderers

KINDS = ["ed25519", "ecdsa-p256"]


def test_keygen_writes_a_private_key_only_its_owner_reads(make_key) -> None:
    private, public = make_key("ed25519")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = run("evidence", "keygen", "--out", private.parent)
    assert again.exit_code == 1 and "does not overwrite" in again.output


@pytest.mark.parametrize("kind", KINDS)
def test_pack_then_verify(kind: str, audit_dir: Path, make_key, pack) -> None:
    private, public = make_key(kind)
    bundle = pack(audit_dir, private)
    result = run("evidence", "verify", bundle, "--key", public)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK {bundle}: ")
    algorithm = "ed25519" if kind == "ed25519" else "ecdsa-p256-sha256"
    assert f"signature {algorithm} by key" in result.output
    assert "profile baseline" in result.output and "fail 1, error 2" in result.output


def test_bundle_holds_results_reports_catalog_waivers_inventory_and_host_evidence(
    audit_dir: Path, make_key, pack, workdir: Path
) -> None:
    private, _ = make_key()
    files = members(pack(audit_dir, private))
    reports = {name for fmt, (name, _) in _renderers().items() if fmt != "json"}
    assert set(files) == {
        "results.json",
        *(f"reports/{name}" for name in reports),
        "catalog.json",
        "waivers.yml",
        "inventory.json",
        "evidence/node1.json",
        "evidence/node2.json",
        "evidence/ghost.json",
        "manifest.json",
        "statement.intoto.jsonl",
        "signature",
    }
    assert files["results.json"] == (audit_dir / "results.json").read_bytes()
    for name in reports:
        assert files[f"reports/{name}"] == (audit_dir / name).read_bytes()
    assert files["waivers.yml"] == (workdir / "waivers.yml").read_bytes()
    catalog = json.loads(files["catalog.json"])
    assert catalog["digest"] == catalog_digest(POLICIES)
    assert catalog["version"] == "0.1.0" and catalog["frameworks"] == {"pci_dss_4": "4.0.1"}
    node2 = json.loads(files["evidence/node2.json"])
    assert node2["host"] == "node2"
    fail = next(r for r in node2["results"] if r["rule"] == "KERN-001")
    assert fail["state"] == "fail"
    assert fail["evidence"] == {"sysctl": [{"key": "kernel.kptr_restrict", "running": "0 & <b>"}]}
    assert json.loads(files["evidence/ghost.json"])["reachable"] is False
    manifest = json.loads(files["manifest.json"])["files"]
    assert set(manifest) == set(files) - {"manifest.json", "statement.intoto.jsonl", "signature"}
    assert manifest["results.json"]["size"] == len(files["results.json"])


def test_inventory_digest_is_sha256sum_of_the_directory_listing(
    audit_dir: Path, make_key, pack, workdir: Path
) -> None:
    private, _ = make_key()
    files = members(pack(audit_dir, private))
    (inventory,) = json.loads(files["inventory.json"])["inventory"]
    by_hand = subprocess.run(
        "find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum",
        shell=True,
        cwd=workdir / "inventory",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert inventory == {
        "source": str(workdir / "inventory"),
        "kind": "directory",
        "files": 2,
        "sha256": by_hand,
    }


def test_catalog_digest_is_the_documented_sha256sum_listing() -> None:
    by_hand = subprocess.run(
        "find rules frameworks profiles schema waiver_policy.yml -type f | LC_ALL=C sort "
        "| xargs sha256sum | sha256sum",
        shell=True,
        cwd=POLICIES,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert catalog_digest(POLICIES) == f"sha256:{by_hand}"


def test_statement_is_in_toto_v1_with_every_file_as_subject(
    audit_dir: Path, make_key, pack
) -> None:
    private, _ = make_key()
    files = members(pack(audit_dir, private))
    env = envelope(files)
    assert env["payloadType"] == "application/vnd.in-toto+json"
    (sig,) = env["signatures"]
    assert base64.b64decode(sig["sig"]) == files["signature"]
    statement = json.loads(base64.b64decode(env["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"].startswith("https://m7guard.invalid/")
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert set(subjects) == set(files) - {"statement.intoto.jsonl", "signature"}
    predicate = statement["predicate"]
    assert predicate["profile"]["id"] == "baseline"
    assert predicate["timestamp"] == "2025-01-01T10:00:03.500Z"
    assert predicate["counts"] == {
        "pass": 1,
        "fail": 1,
        "error": 2,
        "notapplicable": 1,
        "waived": 1,
        "notchecked": 0,
    }
    assert predicate["frameworks"]["pci_dss_4"]["requirements"] == 3
    assert predicate["catalog"]["digest"] == catalog_digest(POLICIES)
    assert predicate["waivers"]["file"] == "waivers.yml"


def test_catalog_recorded_by_the_audit_is_the_one_packed(workdir: Path, make_key, pack) -> None:
    recorded = {"version": "9.9.9", "digest": "sha256:" + "ab" * 32}
    audit = write_audit_dir(workdir / "audit", catalog=recorded)
    private, public = make_key()
    bundle = pack(audit, private)
    catalog = json.loads(members(bundle)["catalog.json"])
    assert (catalog["version"], catalog["digest"], catalog["recorded_by"]) == (
        "9.9.9",
        recorded["digest"],
        "audit",
    )
    assert run("evidence", "verify", bundle, "--key", public).exit_code == 0


@pytest.mark.parametrize("kind", KINDS)
def test_same_input_gives_byte_identical_bundles(
    kind: str, audit_dir: Path, make_key, pack
) -> None:
    private, _ = make_key(kind)
    first = pack(audit_dir, private, "one.tar.gz")
    (audit_dir / "report.html").touch()  # a newer mtime changes nothing
    second = pack(audit_dir, private, "two.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first, "r:gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == sorted(i.name for i in infos)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (1735725603, 0, 0, "", "", 0o644)
    }
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip header without a time stamp
