"""Verify an evidence bundle: the DSSE signature over the statement, and every file of the
archive against the statement's subjects and manifest.json.

The archive is read in memory, never extracted. Every member must be a regular file with a
plain relative path: an absolute path, a `..` or `.` component, a link, a directory, a device
or a duplicate name is refused. All problems are collected and reported together.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m7guard.errors import M7guardError
from m7guard.evidence import EvidenceError, VerificationError
from m7guard.evidence.bundle import (
    MANIFEST,
    MANIFEST_VERSION,
    PREDICATE_TYPE,
    RESULTS,
    SIGNATURE,
    SIGNING_FILES,
    STATEMENT,
    STATEMENT_TYPE,
    sha256_hex,
)
from m7guard.evidence.dsse import INTOTO_PAYLOAD_TYPE, Envelope, pae
from m7guard.evidence.keys import PublicKey, algorithm, key_id, verify_signature
from m7guard.results import Results

# a bundle holds reports and JSON: far below this; a bigger one is refused, not read
MAX_BUNDLE_BYTES = 1 << 30
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.DIRTYPE: "a directory",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


@dataclass(frozen=True)
class Verified:
    path: Path
    files: int
    keyid: str
    algorithm: str
    predicate: dict[str, Any]


def _unsafe_name(name: str) -> str | None:
    """Why a member name is refused, or None."""
    if not name or "\x00" in name or "\\" in name:
        return "an empty name, or one with NUL or backslash"
    if name.startswith("/"):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "path traversal (..)"
    if "." in parts or "" in parts or posixpath.normpath(name) != name:
        return "a path that is not normalised"
    return None


def _gunzip(data: bytes, problems: list[str]) -> bytes | None:
    """The whole decompressed stream (its CRC and length checked), at most MAX_BUNDLE_BYTES."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
            raw = gz.read(MAX_BUNDLE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        problems.append(f"not a readable tar.gz ({exc})")
        return None
    if len(raw) > MAX_BUNDLE_BYTES:
        problems.append(f"the archive exceeds {MAX_BUNDLE_BYTES} bytes, refused")
        return None
    return raw


def read_members(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The regular files of a tar.gz (path -> bytes) and the problems with its members.
    Anything after the end of the archive but zero padding is a problem too: a tar reader
    told to skip the end marker would find members there."""
    problems: list[str] = []
    files: dict[str, bytes] = {}
    raw = _gunzip(data, problems)
    if raw is None:
        return files, problems
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                name = member.name
                why = _unsafe_name(name)
                if why:
                    problems.append(f"member {name!r}: {why}, refused")
                    continue
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
                    problems.append(f"member {name}: {kind}, not a regular file, refused")
                    continue
                if name in files:
                    problems.append(f"member {name}: appears twice, refused")
                    continue
                fh = tar.extractfile(member)
                files[name] = fh.read() if fh is not None else b""
            end = tar.offset
    except (tarfile.TarError, EOFError, OSError) as exc:
        problems.append(f"not a readable tar archive ({exc})")
        return files, problems
    if raw[end:].strip(b"\0"):
        problems.append("data after the end of the tar archive, refused")
    return files, problems


def _json(data: bytes, name: str, problems: list[str]) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not JSON ({exc})")
        return None


def _check_signature(
    files: dict[str, bytes], public_key: PublicKey, key_name: str, problems: list[str]
) -> Any:
    """Verify the envelope; return the statement (parsed) or None."""
    if STATEMENT not in files:
        problems.append(f"{STATEMENT} is missing: the bundle is not signed")
        return None
    try:
        envelope = Envelope.from_json(files[STATEMENT])
    except ValueError as exc:
        problems.append(f"{STATEMENT}: {exc}")
        return None
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE:
        problems.append(
            f"{STATEMENT}: payloadType {envelope.payload_type!r} is not {INTOTO_PAYLOAD_TYPE}"
        )
    signed = pae(envelope.payload_type, envelope.payload)
    wanted = key_id(public_key)
    good = [s for s in envelope.signatures if verify_signature(public_key, s.sig, signed)]
    if not good:
        named = ", ".join(s.keyid or "(no keyid)" for s in envelope.signatures)
        problems.append(
            f"signature: the DSSE signature in {STATEMENT} does not verify with {key_name} "
            f"(key id {wanted}; the envelope names key {named})"
        )
    elif good[0].keyid and good[0].keyid != wanted:
        problems.append(f"signature: keyid {good[0].keyid} in {STATEMENT} is not {wanted}")
    if SIGNATURE not in files:
        problems.append(f"{SIGNATURE} is missing")
    elif files[SIGNATURE] not in {s.sig for s in envelope.signatures}:
        problems.append(f"{SIGNATURE}: differs from the signature in {STATEMENT}")
    statement = _json(envelope.payload, f"{STATEMENT} payload", problems)
    if not isinstance(statement, dict):
        if statement is not None:
            problems.append(f"{STATEMENT} payload: not a JSON object")
        return None
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"statement: _type {statement.get('_type')!r} is not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(
            f"statement: predicateType {statement.get('predicateType')!r} is not {PREDICATE_TYPE}"
        )
    return statement


def _subjects(statement: Any, problems: list[str]) -> dict[str, str] | None:
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list) or not subjects:
        problems.append("statement: subject is missing or empty")
        return None
    out: dict[str, str] = {}
    for i, s in enumerate(subjects):
        name = s.get("name") if isinstance(s, dict) else None
        digest = s.get("digest", {}).get("sha256") if isinstance(s, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str):
            problems.append(f"statement: subject[{i}] has no name or sha256 digest")
            continue
        if name in out:
            problems.append(f"statement: subject {name} is listed twice")
        out[name] = digest.lower()
    return out


def _manifest(files: dict[str, bytes], problems: list[str]) -> dict[str, Any] | None:
    if MANIFEST not in files:
        problems.append(f"{MANIFEST} is missing")
        return None
    doc = _json(files[MANIFEST], MANIFEST, problems)
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        problems.append(f"{MANIFEST}: no files object")
        return None
    if doc.get("version") != MANIFEST_VERSION:
        problems.append(f"{MANIFEST}: version {doc.get('version')!r} is not {MANIFEST_VERSION}")
    return doc["files"]


def _compare(
    files: dict[str, bytes], listed: dict[str, Any], where: str, problems: list[str]
) -> None:
    """files (the archive's) against a list of name -> sha256 (or {sha256, size})."""
    for name in sorted(set(files) - set(listed)):
        problems.append(f"extra file {name}: in the archive, not in {where}")
    for name in sorted(set(listed) - set(files)):
        problems.append(f"missing file {name}: in {where}, not in the archive")
    for name in sorted(set(files) & set(listed)):
        entry = listed[name]
        digest = entry.get("sha256") if isinstance(entry, dict) else entry
        if not isinstance(digest, str) or digest.lower() != sha256_hex(files[name]):
            problems.append(f"{name}: sha256 differs from {where}")
        elif isinstance(entry, dict) and entry.get("size") != len(files[name]):
            problems.append(f"{name}: size differs from {where}")


def _check_predicate(files: dict[str, bytes], statement: Any, problems: list[str]) -> None:
    """The signed summary says what results.json says (profile, end, counts)."""
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    if not isinstance(predicate, dict):
        problems.append("statement: predicate is missing")
        return
    if RESULTS not in files:
        return
    try:
        results = Results.validated(json.loads(files[RESULTS]), RESULTS)
    except (M7guardError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{RESULTS}: not a valid results file ({exc})")
        return
    for key, value in (
        ("profile", results.data["profile"]),
        ("timestamp", results.data["finished"]),
        ("counts", results.counts()),
    ):
        if predicate.get(key) != value:
            problems.append(f"statement: predicate {key} differs from {RESULTS}")


def verify_bytes(data: bytes, public_key: PublicKey, key_name: str, path: Path) -> Verified:
    files, problems = read_members(data)
    statement = _check_signature(files, public_key, key_name, problems)
    covered = {n: d for n, d in files.items() if n not in SIGNING_FILES}
    if statement is not None:
        subjects = _subjects(statement, problems)
        if subjects is not None:
            _compare(covered, subjects, "the statement's subjects", problems)
    listed = _manifest(files, problems)
    if listed is not None:
        content = {n: d for n, d in covered.items() if n != MANIFEST}
        _compare(content, listed, MANIFEST, problems)
    if statement is not None and not problems:
        _check_predicate(files, statement, problems)
    if problems:
        raise VerificationError(problems)
    return Verified(
        path=path,
        files=len(files),
        keyid=key_id(public_key),
        algorithm=algorithm(public_key),
        predicate=statement.get("predicate", {}),
    )


def verify(path: Path, public_key: PublicKey, key_name: str) -> Verified:
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise VerificationError([f"{path} is {size} bytes, more than a bundle may be"])
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read bundle {path}: {exc.strerror}") from exc
    return verify_bytes(data, public_key, key_name, path)
