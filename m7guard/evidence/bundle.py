"""Pack an audit's output directory into a signed evidence bundle (one tar.gz).

Layout (every path relative to the archive root, no directory entries):

  results.json               the results file, byte for byte
  reports/<name>             every report the audit wrote (report.html, junit.xml, ...)
  catalog.json               the catalog's version and digest
  waivers<.yml>              the waivers file the audit used (when there was one)
  inventory.json             the SHA-256 of each inventory source (when given)
  evidence/<host>.json       each host's results with the evidence the checks recorded
  manifest.json              path -> sha256 and size of every file above
  statement.intoto.jsonl     a DSSE envelope holding an in-toto Statement v1 whose subjects
                             are every file above and manifest.json
  signature                  the envelope's signature (raw bytes, for openssl by hand)

The archive is deterministic: members sorted by path, one mtime (the audit's end), uid and
gid 0, no user or group names, mode 0644, gzip without a name or time stamp.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m7guard.catalog.loader import catalog_digest, find_policies_dir
from m7guard.catalog.waivers import HOST_FACT_PATH
from m7guard.errors import M7guardError
from m7guard.evidence import EvidenceError
from m7guard.evidence.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, pae
from m7guard.evidence.keys import Signer, key_id
from m7guard.results import Results

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://m7guard.invalid/evidence/audit-summary/v1"
RESULTS = "results.json"
CATALOG = "catalog.json"
INVENTORY = "inventory.json"
MANIFEST = "manifest.json"
STATEMENT = "statement.intoto.jsonl"
SIGNATURE = "signature"
# the files no digest list can hold: the envelope and the signature sign the others
SIGNING_FILES = frozenset({STATEMENT, SIGNATURE})
MANIFEST_VERSION = 1
_SAFE_HOST = re.compile(r"[^A-Za-z0-9._-]")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(doc: Any) -> bytes:
    """Sorted keys, indented, ASCII, a final newline: the same document, the same bytes."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def report_files() -> dict[str, str]:
    """format -> file name of every report `m7guard audit --out` may write (not results.json)."""
    from m7guard.reports import _renderers

    return {fmt: name for fmt, (name, _) in _renderers().items() if fmt != "json"}


# -- the inventory's digest ---------------------------------------------------------------
def tree_listing(root: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every regular file under root, symlinks followed (a loop is
    an error), sorted by the path's bytes."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_raise):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            raise EvidenceError(f"{dirpath}: a directory link loops back; cannot hash {root}")
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            if "\n" in rel or "\\" in rel:
                raise EvidenceError(f"{path}: a file name with a newline or backslash")
            out.append((rel, sha256_hex(_read(path))))
    return sorted(out, key=lambda item: item[0].encode())


def _raise(exc: OSError) -> None:
    raise EvidenceError(f"cannot read {exc.filename}: {exc.strerror}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read {path}: {exc.strerror}") from exc


def inventory_digest(path: Path) -> dict[str, Any]:
    """A file: its SHA-256. A directory: the SHA-256 of sha256sum's listing of its files
    (`HEX  RELATIVE/PATH` lines sorted by path), which by hand is
    `cd DIR && find -L . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum
    | sha256sum`."""
    if path.is_dir():
        listing = tree_listing(path)
        text = "".join(f"{digest}  {rel}\n" for rel, digest in listing)
        return {
            "source": str(path),
            "kind": "directory",
            "files": len(listing),
            "sha256": sha256_hex(text.encode()),
        }
    if path.is_file():
        return {"source": str(path), "kind": "file", "sha256": sha256_hex(_read(path))}
    raise EvidenceError(f"inventory {path} is neither a file nor a directory")


# -- the parts of a bundle ----------------------------------------------------------------
@dataclass
class PackOptions:
    audit_dir: Path
    waivers: Path | None = None
    inventory: tuple[Path, ...] = ()
    policies: Path | None = None


@dataclass
class Bundle:
    """The files of a bundle (path -> bytes) before signing, and the audit's summary."""

    files: dict[str, bytes] = field(default_factory=dict)
    predicate: dict[str, Any] = field(default_factory=dict)
    mtime: int = 0


def _host_file(host: str, taken: Mapping[str, str]) -> str:
    name = _SAFE_HOST.sub("_", host)
    if name in ("", ".", "..") or name.startswith("."):
        name = "_" + name
    path = f"evidence/{name}.json"
    if path in taken:
        raise EvidenceError(
            f"hosts {taken[path]!r} and {host!r} map to the same evidence file {path}"
        )
    return path


def host_evidence(results: Results) -> dict[str, bytes]:
    """evidence/<host>.json for every host: its reachability and each result's state,
    message, evidence and waiver."""
    by_host = results.by_host()
    info = {h["name"]: h for h in results.data["hosts"]}
    out: dict[str, bytes] = {}
    owners: dict[str, str] = {}
    for host, rows in by_host.items():
        path = _host_file(host, owners)
        owners[path] = host
        h = info.get(host, {})
        doc = {
            "host": host,
            "reachable": h.get("reachable"),
            "error": h.get("error"),
            "groups": h.get("groups"),
            "results": [
                {
                    k: r[k]
                    for k in ("rule", "state", "evaluated_state", "message", "evidence", "waiver")
                    if k in r
                }
                for r in rows
            ],
        }
        out[path] = canonical_json(doc)
    return out


def recorded_waivers_file(results: Results) -> str | None:
    """The controller waivers file the results name (the source of their applied waivers),
    or None; a host's own waiver claims are not a file of the controller."""
    sources = {
        w.get("source", "")
        for w in results.data["waivers"]
        if w.get("source") and not str(w.get("source")).endswith(f":{HOST_FACT_PATH}")
    }
    if len(sources) > 1:
        raise EvidenceError(
            f"the results name several waivers files ({', '.join(sorted(sources))}); "
            "pass the one the audit used with --waivers"
        )
    return next(iter(sources), None)


def _find_waivers(results: Results, opts: PackOptions) -> Path | None:
    if opts.waivers is not None:
        return opts.waivers
    recorded = recorded_waivers_file(results)
    if recorded is None:
        return None
    candidates = [Path(recorded), opts.audit_dir / recorded]
    with contextlib.suppress(M7guardError):
        candidates.append(find_policies_dir(opts.policies).parent / recorded)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise EvidenceError(
        f"the results were audited with the waivers file {recorded}, which is not found "
        "(tried it from the current directory, the audit directory and the project root); "
        "pass it with --waivers"
    )


def _check_waivers(path: Path, results: Results) -> None:
    """The file holds every waiver the results applied (rule, hosts, expiry, approver)."""
    import yaml

    try:
        data = yaml.safe_load(_read(path)) or {}
    except yaml.YAMLError as exc:
        raise EvidenceError(f"waivers file {path} is not YAML: {exc}") from exc
    entries = data.get("waivers", []) if isinstance(data, dict) else []
    have = {
        (str(w.get("rule")), str(w.get("hosts")), str(w.get("expires")), str(w.get("approver")))
        for w in entries
        if isinstance(w, dict)
    }
    for w in results.data["waivers"]:
        if str(w.get("source", "")).endswith(f":{HOST_FACT_PATH}"):
            continue
        key = (str(w["rule"]), str(w["hosts"]), str(w["expires"]), str(w["approver"]))
        if key not in have:
            raise EvidenceError(
                f"waivers file {path} does not hold the waiver of {w['rule']} on {w['hosts']} "
                f"(expires {w['expires']}, approver {w['approver']}) the audit applied: it is "
                "not the file the audit used"
            )


def catalog_record(results: Results, policies: Path | None) -> dict[str, Any]:
    recorded = results.data.get("catalog")
    frameworks = {fw: d.get("version", "") for fw, d in sorted(results.data["frameworks"].items())}
    if recorded:
        return {
            "version": recorded["version"],
            "digest": recorded["digest"],
            "recorded_by": "audit",
            "frameworks": frameworks,
        }
    root = find_policies_dir(policies)
    return {
        "version": results.data["tool"]["version"],
        "digest": catalog_digest(root),
        "recorded_by": f"pack (from {root}; the results do not record the catalog)",
        "frameworks": frameworks,
    }


def summary(results: Results, catalog: Mapping[str, Any]) -> dict[str, Any]:
    """The statement's predicate: what was audited and how it fared."""
    data = results.data
    frameworks = {}
    for fw in sorted(data["frameworks"]):
        s = results.framework_summary(fw)
        frameworks[fw] = {
            "title": s["title"],
            "version": data["frameworks"][fw].get("version", ""),
            **{
                k: s[k]
                for k in (
                    "requirements",
                    "satisfied",
                    "not_satisfied",
                    "waived",
                    "not_assessed",
                    "manual",
                )
            },
        }
    return {
        "timestamp": data["finished"],
        "started": data["started"],
        "tool": data["tool"],
        "profile": data["profile"],
        "inventory": data["inventory"],
        "limit": data.get("limit"),
        "hosts": len(data["hosts"]),
        "counts": results.counts(),
        "frameworks": frameworks,
        "catalog": {"version": catalog["version"], "digest": catalog["digest"]},
    }


def _mtime(results: Results) -> int:
    text = str(results.data["finished"]).replace("Z", "+00:00")
    try:
        return int(dt.datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def collect(opts: PackOptions) -> Bundle:
    """Read the audit directory and make every file of the bundle but the signing ones."""
    audit_dir = opts.audit_dir
    if not audit_dir.is_dir():
        raise EvidenceError(f"{audit_dir} is not a directory (the --out of `m7guard audit`)")
    results_path = audit_dir / RESULTS
    if not results_path.is_file():
        raise EvidenceError(f"{results_path} is missing: {audit_dir} holds no audit's results")
    results = Results.load(results_path)
    bundle = Bundle(mtime=_mtime(results))
    bundle.files[RESULTS] = _read(results_path)
    for name in sorted(report_files().values()):
        path = audit_dir / name
        if path.is_file():
            bundle.files[f"reports/{name}"] = _read(path)
    catalog = catalog_record(results, opts.policies)
    bundle.files[CATALOG] = canonical_json(catalog)
    predicate = summary(results, catalog)
    waivers = _find_waivers(results, opts)
    predicate["waivers"] = None
    if waivers is not None:
        _check_waivers(waivers, results)
        name = "waivers" + (waivers.suffix if waivers.suffix in (".yml", ".yaml") else "")
        bundle.files[name] = _read(waivers)
        predicate["waivers"] = {"file": name, "sha256": sha256_hex(bundle.files[name])}
    predicate["inventory_sha256"] = []
    if opts.inventory:
        inventories = [inventory_digest(p) for p in opts.inventory]
        bundle.files[INVENTORY] = canonical_json({"inventory": inventories})
        predicate["inventory_sha256"] = [
            {"source": i["source"], "sha256": i["sha256"]} for i in inventories
        ]
    bundle.files.update(host_evidence(results))
    bundle.predicate = predicate
    return bundle


def manifest(files: Mapping[str, bytes]) -> bytes:
    return canonical_json(
        {
            "version": MANIFEST_VERSION,
            "files": {
                path: {"sha256": sha256_hex(data), "size": len(data)}
                for path, data in sorted(files.items())
            },
        }
    )


def statement(files: Mapping[str, bytes], predicate: Mapping[str, Any]) -> bytes:
    """The in-toto Statement v1 (compact JSON, sorted keys): one subject per file."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": path, "digest": {"sha256": sha256_hex(data)}}
            for path, data in sorted(files.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(bundle: Bundle, signer: Signer) -> dict[str, bytes]:
    """Every file of the signed bundle: the content, manifest.json, the envelope and the
    signature."""
    for reserved in (MANIFEST, *SIGNING_FILES):
        if reserved in bundle.files:
            raise EvidenceError(f"{reserved} is a name the bundle keeps for itself")
    files = dict(bundle.files)
    files[MANIFEST] = manifest(bundle.files)
    payload = statement(files, bundle.predicate)
    signature = signer.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
    envelope = Envelope(
        INTOTO_PAYLOAD_TYPE, payload, (Signature(key_id(signer.public_key), signature),)
    )
    files[STATEMENT] = envelope.to_json_line()
    files[SIGNATURE] = signature
    return files


def tar_bytes(files: Mapping[str, bytes], mtime: int) -> bytes:
    """A deterministic tar.gz of files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size = len(files[path])
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(files[path]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """data into path: written to a temporary file beside it (a name of its own, so two
    writers never share it), then renamed over it; on error path is left as it was."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise EvidenceError(f"cannot write {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class Packed:
    path: Path
    files: tuple[str, ...]
    keyid: str
    sha256: str


def pack(opts: PackOptions, signer: Signer, output: Path) -> Packed:
    """Collect, sign and write the bundle to output (whole or not at all)."""
    bundle = collect(opts)
    files = sign(bundle, signer)
    data = tar_bytes(files, bundle.mtime)
    write_atomic(output, data)
    return Packed(output, tuple(sorted(files)), key_id(signer.public_key), sha256_hex(data))
