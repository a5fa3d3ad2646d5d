"""verify refuses a bundle that differs in any way from what was signed: a changed byte in
any member, a wrong key, an extra or missing file, links, traversal and other members that
are not plain files."""

from __future__ import annotations

import base64
import gzip
import json
import tarfile
import zlib
from pathlib import Path

import pytest
from evidencekit import envelope, members, rewrite, run

from m7guard.evidence.bundle import tar_bytes


@pytest.fixture
def signed(audit_dir: Path, make_key, pack) -> tuple[Path, Path]:
    private, public = make_key("ed25519")
    return pack(audit_dir, private), public


def verify(bundle: Path, public: Path):
    return run("evidence", "verify", bundle, "--key", public)


def failed(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("FAILED ")
    return result.output


def test_the_untouched_repack_verifies(signed, tmp_path: Path) -> None:
    """The rewrite helper itself changes nothing that matters: the tests below fail because
    of their one change."""
    bundle, public = signed
    same = rewrite(bundle, members(bundle), tmp_path / "same.tar.gz")
    assert verify(same, public).exit_code == 0


def test_one_changed_byte_in_any_member_fails(signed, tmp_path: Path) -> None:
    bundle, public = signed
    files = members(bundle)
    assert {"results.json", "manifest.json", "statement.intoto.jsonl", "signature"} <= set(files)
    assert any(n.startswith("reports/") for n in files)
    for name, data in sorted(files.items()):
        for offset in (0, len(data) // 2, len(data) - 1):
            changed = bytearray(data)
            changed[offset] ^= 0x01
            out = rewrite(bundle, {**files, name: bytes(changed)}, tmp_path / "t.tar.gz")
            output = failed(verify(out, public))
            assert name in output, (name, offset, output)


def test_a_one_byte_change_of_the_archive_itself_fails(signed, tmp_path: Path) -> None:
    """A changed byte of the tar.gz fails, unless it is one deflate ignores (the padding
    bits of the last byte) and the archive inside is byte for byte the same."""
    bundle, public = signed
    data = bundle.read_bytes()
    inside = gzip.decompress(data)
    caught = 0
    for offset in range(0, len(data), max(1, len(data) // 60)):
        changed = bytearray(data)
        changed[offset] ^= 0x40
        out = tmp_path / "t.tar.gz"
        out.write_bytes(bytes(changed))
        try:
            same = gzip.decompress(bytes(changed)) == inside
        except (OSError, EOFError, zlib.error):
            same = False
        if same:
            assert verify(out, public).exit_code == 0
        else:
            failed(verify(out, public))
            caught += 1
    assert caught >= 55


def test_data_after_the_end_of_the_archive_fails(signed, tmp_path: Path) -> None:
    bundle, public = signed
    inside = gzip.decompress(bundle.read_bytes())
    out = tmp_path / "t.tar.gz"
    out.write_bytes(gzip.compress(inside + b"hidden member"))
    assert "data after the end of the tar archive" in failed(verify(out, public))


def test_a_changed_statement_with_the_old_signature_fails(signed, tmp_path: Path) -> None:
    """Valid JSON, valid base64, same signature: only the signature check can catch it."""
    bundle, public = signed
    files = members(bundle)
    env = envelope(files)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["counts"]["fail"] = 0
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out = rewrite(
        bundle,
        {**files, "statement.intoto.jsonl": json.dumps(env).encode()},
        tmp_path / "t.tar.gz",
    )
    output = failed(verify(out, public))
    assert "signature: the DSSE signature in statement.intoto.jsonl does not verify" in output


def test_results_changed_with_a_matching_manifest_fails_on_the_signed_subjects(
    signed, tmp_path: Path
) -> None:
    bundle, public = signed
    files = members(bundle)
    results = files["results.json"].replace(b'"state": "fail"', b'"state": "pass"')
    assert results != files["results.json"]
    manifest = json.loads(files["manifest.json"])
    import hashlib

    manifest["files"]["results.json"] = {
        "sha256": hashlib.sha256(results).hexdigest(),
        "size": len(results),
    }
    out = rewrite(
        bundle,
        {**files, "results.json": results, "manifest.json": json.dumps(manifest).encode()},
        tmp_path / "t.tar.gz",
    )
    output = failed(verify(out, public))
    assert "results.json: sha256 differs from the statement's subjects" in output
    assert "manifest.json: sha256 differs from the statement's subjects" in output


def test_wrong_key_fails(signed, make_key) -> None:
    bundle, _ = signed
    for kind in ("ed25519", "ecdsa-p256"):
        _, other = make_key(kind, "-other")
        output = failed(verify(bundle, other))
        assert "does not verify" in output


def test_an_extra_file_fails(signed, tmp_path: Path) -> None:
    bundle, public = signed
    files = members(bundle)
    out = rewrite(bundle, {**files, "reports/extra.html": b"<p>ok</p>"}, tmp_path / "t.tar.gz")
    output = failed(verify(out, public))
    assert "extra file reports/extra.html: in the archive, not in the statement's subjects" in (
        output
    )
    assert "extra file reports/extra.html: in the archive, not in manifest.json" in output


@pytest.mark.parametrize(
    "name", ["results.json", "reports/junit.xml", "evidence/node1.json", "waivers.yml"]
)
def test_a_missing_file_fails(name: str, signed, tmp_path: Path) -> None:
    bundle, public = signed
    files = members(bundle)
    del files[name]
    output = failed(verify(rewrite(bundle, files, tmp_path / "t.tar.gz"), public))
    assert f"missing file {name}: in the statement's subjects, not in the archive" in output


@pytest.mark.parametrize("name", ["manifest.json", "statement.intoto.jsonl", "signature"])
def test_a_missing_signing_file_fails(name: str, signed, tmp_path: Path) -> None:
    bundle, public = signed
    files = members(bundle)
    del files[name]
    output = failed(verify(rewrite(bundle, files, tmp_path / "t.tar.gz"), public))
    assert name in output


def _info(name: str, kind: bytes, **attrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize(
    ("info", "data", "why"),
    [
        (_info("../evil.json", tarfile.REGTYPE, size=2), b"{}", "path traversal"),
        (_info("reports/../../evil", tarfile.REGTYPE, size=2), b"{}", "path traversal"),
        (_info("/etc/evil", tarfile.REGTYPE, size=2), b"{}", "an absolute path"),
        (_info("./results.json", tarfile.REGTYPE, size=2), b"{}", "not normalised"),
        (_info("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None, "a symbolic link"),
        (_info("hard", tarfile.LNKTYPE, linkname="results.json"), None, "a hard link"),
        (_info("dir", tarfile.DIRTYPE, mode=0o755), None, "a directory"),
        (_info("fifo", tarfile.FIFOTYPE), None, "a FIFO"),
        (_info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None, "a character device"),
        (_info("results.json", tarfile.REGTYPE, size=2), b"{}", "appears twice"),
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "dot",
        "symlink",
        "hardlink",
        "dir",
        "fifo",
        "chardev",
        "duplicate",
    ],
)
def test_members_that_are_not_plain_files_are_refused(
    info, data, why, signed, tmp_path: Path
) -> None:
    bundle, public = signed
    before = sorted(p.name for p in tmp_path.iterdir())
    out = rewrite(bundle, members(bundle), tmp_path / "t.tar.gz", extra=[(info, data)])
    output = failed(verify(out, public))
    assert why in output and "refused" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "t.tar.gz"])


def test_a_bundle_that_is_not_a_tar_gz_fails(signed, tmp_path: Path) -> None:
    _, public = signed
    out = tmp_path / "t.tar.gz"
    out.write_bytes(b"not a bundle")
    assert "not a readable tar.gz" in failed(verify(out, public))
    out.write_bytes(tar_bytes({}, 0))
    output = failed(verify(out, public))
    assert "statement.intoto.jsonl is missing" in output
