"""An independent verifier: the DSSE signature checked by openssl over a PAE the test builds
from the spec, and the manifest's digests recomputed by sha256sum over the extracted files."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from evidencekit import dsse_pae, envelope, members

OPENSSL = shutil.which("openssl")
SHA256SUM = shutil.which("sha256sum")


def test_the_tools_are_there() -> None:
    assert OPENSSL and SHA256SUM, "openssl and sha256sum (coreutils) are needed"


def openssl_verify(kind: str, public: Path, pae: Path, sig: Path) -> subprocess.CompletedProcess:
    if kind == "ed25519":
        cmd = [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin",
               "-in", pae, "-sigfile", sig]  # fmt: skip
    else:
        cmd = [OPENSSL, "dgst", "-sha256", "-verify", public, "-signature", sig, pae]
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def pae_and_sig(files: dict[str, bytes], where: Path) -> tuple[Path, Path, bytes]:
    env = envelope(files)
    payload = base64.b64decode(env["payload"])
    pae = where / "pae"
    pae.write_bytes(dsse_pae(env["payloadType"], payload))
    sig = where / "sig"
    sig.write_bytes(base64.b64decode(env["signatures"][0]["sig"]))
    return pae, sig, payload


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_openssl_verifies_the_dsse_signature_and_rejects_a_changed_payload(
    kind: str, audit_dir: Path, make_key, pack, tmp_path: Path
) -> None:
    private, public = make_key(kind)
    files = members(pack(audit_dir, private))
    pae, sig, payload = pae_and_sig(files, tmp_path)
    assert sig.read_bytes() == files["signature"]
    ok = openssl_verify(kind, public, pae, sig)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    verified = "Signature Verified Successfully" if kind == "ed25519" else "Verified OK"
    assert verified in ok.stdout
    # the payload alone (without PAE) is not what is signed
    bare = tmp_path / "payload"
    bare.write_bytes(payload)
    assert openssl_verify(kind, public, bare, sig).returncode != 0
    # one changed statement byte
    statement = json.loads(payload)
    statement["predicate"]["counts"]["pass"] += 1
    tampered = tmp_path / "pae-tampered"
    tampered.write_bytes(dsse_pae("application/vnd.in-toto+json", json.dumps(statement).encode()))
    bad = openssl_verify(kind, public, tampered, sig)
    assert bad.returncode != 0 and verified not in bad.stdout


def test_sha256sum_agrees_with_the_manifest_and_the_statement(
    audit_dir: Path, make_key, pack, tmp_path: Path
) -> None:
    private, _ = make_key()
    bundle = pack(audit_dir, private)
    out = tmp_path / "x"
    out.mkdir()
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(out, filter="data")
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    listing = "".join(f"{e['sha256']}  {name}\n" for name, e in sorted(manifest.items()))
    check = subprocess.run(
        [SHA256SUM, "--check", "--strict", "-"],
        input=listing,
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(manifest)
    for name, entry in manifest.items():
        assert (out / name).stat().st_size == entry["size"]
    # the statement names the manifest too, with the digest sha256sum computes
    statement = json.loads(base64.b64decode(envelope(members(bundle))["payload"]))
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    computed = subprocess.run(
        [SHA256SUM, *sorted(subjects)], cwd=out, capture_output=True, text=True, check=True
    ).stdout
    assert {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in computed.splitlines()} == (
        subjects
    )
    # and a changed file is caught by sha256sum as well
    (out / "results.json").write_bytes((out / "results.json").read_bytes() + b" ")
    again = subprocess.run(
        [SHA256SUM, "--check", "--strict", "-"], input=listing, cwd=out, capture_output=True,
        text=True,
    )  # fmt: skip
    assert again.returncode != 0 and "results.json: FAILED" in again.stdout
