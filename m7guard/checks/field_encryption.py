"""Field encryption checks: the ENC-* rules of policies/rules/field_encryption/.

Each check starts from the node's /etc/m7guard/field-encryption.yml (written by the
field_encryption role). ENC-003 inspects that file itself. ENC-001 and ENC-002 take the key
alias and region from it and ask KMS from the controller process (boto3: credentials from
the usual chain, AWS_ENDPOINT_URL for a test KMS); nodes never need AWS access for the
audit. Without credentials, or when KMS cannot be reached, they report error, never pass.
ENC-004 scans the configured data directories on the node with the node's own
`field-encrypt verify --format json` (record files), field_encryption.parquet (Parquet
files: sensitive columns stored in plaintext, card numbers in the columns readable without a
key; a node that cannot read Parquet makes the rule `error`) and its detector (other text
files).

The key policy is evaluated here independently of the role's module, so a mistake in the
remediation cannot hide itself from the audit.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import Any

import yaml

from m7guard.checks import rule

CONFIG = "/etc/m7guard/field-encryption.yml"
DEFAULT_TOOL = "/opt/m7guard/venv/bin/field-encrypt"
MAX_FINDINGS_SHOWN = 20


class EncryptionStateError(Exception):
    """The state a rule needs could not be read, so the rule cannot be decided (error)."""


# -- node configuration --------------------------------------------------------------------


def _read_config(host: Any) -> dict[str, Any]:
    """The parsed node configuration; EncryptionStateError when missing or malformed."""
    out = host.run("cat -- %s", CONFIG)
    if out.rc != 0:
        raise EncryptionStateError(
            f"{CONFIG} is missing or unreadable ({out.stderr.strip()[:200]}); see ENC-003"
        )
    try:
        document = yaml.safe_load(out.stdout)
    except yaml.YAMLError as exc:
        raise EncryptionStateError(f"{CONFIG} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise EncryptionStateError(f"{CONFIG} is not a mapping")
    return document


def _config_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    kms = document.get("kms")
    if not isinstance(kms, dict) or not str(kms.get("key_alias", "")).startswith("alias/"):
        problems.append("kms.key_alias is missing or not alias/NAME")
    if not isinstance(kms, dict) or not kms.get("region"):
        problems.append("kms.region is missing")
    tables = document.get("tables")
    if not isinstance(tables, dict) or not tables:
        problems.append("tables is missing or empty: no field policy")
    else:
        for name, policy in tables.items():
            if not isinstance(policy, dict) or not policy.get("fields"):
                problems.append(f"table {name} has no fields to encrypt")
    if not isinstance(document.get("data_dirs", []), list):
        problems.append("data_dirs is not a list")
    return problems


def _key_of(host: Any, evidence: dict[str, Any]) -> tuple[str, str, str]:
    """(alias, region, configured key id) of the node's KMS key."""
    document = _read_config(host)
    kms = document.get("kms") if isinstance(document.get("kms"), dict) else {}
    alias, region = str(kms.get("key_alias") or ""), str(kms.get("region") or "")
    if not alias or not region:
        raise EncryptionStateError(f"{CONFIG} names no kms.key_alias and kms.region")
    evidence.update({"config": CONFIG, "alias": alias, "region": region})
    return alias, region, str(kms.get("key_id") or "")


# -- KMS, asked from the controller ---------------------------------------------------------


def kms_client(region: str) -> Any:
    """A KMS client for the controller; never falls back to EC2 instance metadata unless
    AWS_EC2_METADATA_DISABLED=false says so explicitly."""
    try:
        import boto3
        import botocore.session
        from botocore.config import Config
    except ImportError:
        raise EncryptionStateError("boto3 is not installed on the controller") from None
    core = botocore.session.Session()
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() != "false":
        core.get_component("credential_provider").remove("iam-role")
    if core.get_credentials() is None:
        raise EncryptionStateError(
            "no AWS credentials on the controller to ask KMS: set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (AWS_ENDPOINT_URL for a test KMS; "
            "instance metadata only with AWS_EC2_METADATA_DISABLED=false)"
        )
    session = boto3.session.Session(botocore_session=core, region_name=region)
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20
    )
    return session.client("kms", config=config)


def _kms_call(client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(getattr(client, operation)(**kwargs))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "NotFoundException":
            raise
        raise EncryptionStateError(
            f"KMS {operation}: {error.get('Code', 'error')}: {error.get('Message', '')}"
        ) from None
    except BotoCoreError as exc:
        raise EncryptionStateError(f"KMS {operation}: {exc}") from None


def _describe(host: Any, evidence: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The KMS client and the key metadata of the node's key (asserts that it exists)."""
    from botocore.exceptions import ClientError

    alias, region, wanted = _key_of(host, evidence)
    client = kms_client(region)
    evidence["endpoint"] = client.meta.endpoint_url
    try:
        meta = _kms_call(client, "describe_key", KeyId=alias)["KeyMetadata"]
    except ClientError:
        evidence["exists"] = False
        raise AssertionError(f"KMS key {alias} does not exist in {region}") from None
    evidence.update(
        {"exists": True, "key_id": meta.get("KeyId"), "key_arn": meta.get("Arn"),
         "key_state": meta.get("KeyState"), "key_manager": meta.get("KeyManager")}
    )
    if wanted:
        assert wanted in (meta.get("KeyId"), meta.get("Arn")), (
            f"{alias} points to {meta.get('KeyId')}, not to the configured key {wanted}"
        )
    return client, meta


@rule("ENC-001")
def test_enc_001(host: Any, evidence: dict[str, Any]) -> None:
    """The KMS key that protects encrypted fields rotates automatically."""
    client, meta = _describe(host, evidence)
    assert meta.get("KeyState") == "Enabled", (
        f"KMS key {evidence['alias']} is {meta.get('KeyState')}, not Enabled"
    )
    status = _kms_call(client, "get_key_rotation_status", KeyId=meta["KeyId"])
    evidence["rotation_enabled"] = bool(status.get("KeyRotationEnabled"))
    if "RotationPeriodInDays" in status:
        evidence["rotation_period_days"] = status["RotationPeriodInDays"]
    assert evidence["rotation_enabled"], (
        f"automatic rotation is off for KMS key {evidence['alias']} ({meta['KeyId']})"
    )


# A Condition exempts a wildcard-principal statement only if one of its entries narrows the
# callers to named accounts, organisations or principals: one of these keys, with one of
# these operators (no IfExists, no set prefix, so a request without the key never matches),
# and concrete values.
NARROWING_KEYS = frozenset({
    "aws:principalaccount", "aws:principalorgid", "aws:principalarn", "aws:sourceaccount",
    "aws:sourcearn", "aws:sourceowner", "aws:userid", "kms:calleraccount",
})
NARROWING_OPERATORS = frozenset({
    "StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike",
})
# Entries known not to narrow the callers (network, transport, request shape, negations).
_BASE_OPERATORS = frozenset({
    "StringEquals", "StringEqualsIgnoreCase", "StringLike", "StringNotEquals",
    "StringNotEqualsIgnoreCase", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals",
    "ArnNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
    "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
    "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
})
KNOWN_OPERATORS = _BASE_OPERATORS | {f"{o}IfExists" for o in _BASE_OPERATORS} | {"Null"}
OTHER_KNOWN_KEYS = frozenset({
    "aws:securetransport", "aws:sourceip", "aws:sourcevpc", "aws:sourcevpce",
    "aws:currenttime", "aws:epochtime", "aws:multifactorauthpresent", "aws:requestedregion",
    "aws:viaawsservice", "aws:principaltype", "aws:principalservicename",
    "aws:principalisawsservice", "aws:calledvia", "aws:calledviafirst", "aws:calledvialast",
    "kms:viaservice", "kms:grantisforawsresource", "kms:encryptioncontextkeys",
    "kms:keyspec", "kms:keyusage", "kms:encryptionalgorithm", "kms:signingalgorithm",
    "kms:grantoperations", "kms:granteeprincipal", "kms:retiringprincipal", "kms:keyorigin",
    "kms:requestalias", "kms:resourcealiases", "kms:datakeypairspec",
})


def _concrete(key: str, operator: str, values: Any) -> bool:
    """Whether every value names specific callers (no wildcard where it would match all)."""
    items = values if isinstance(values, list) else [values]
    if not items or not all(isinstance(v, str) and v for v in items):
        return False
    for value in items:
        if operator.endswith("Like") and value.startswith("arn:"):
            fields = value.split(":")
            if len(fields) < 6 or not fields[4] or any(c in fields[4] for c in "*?"):
                return False  # the account part of the ARN must be literal
        elif any(c in value for c in "*?"):
            return False
    return True


def _condition_verdict(condition: Any) -> tuple[bool, list[str]]:
    """(narrows the callers, entries the check does not know) for a statement's Condition."""
    if not isinstance(condition, dict):
        return False, [f"Condition {condition!r} is not an object"]
    unknown = []
    for operator, entries in condition.items():
        if not isinstance(entries, dict):
            unknown.append(f"{operator}: {entries!r} is not an object")
            continue
        for key, values in entries.items():
            lowered = str(key).lower()
            if (
                operator in NARROWING_OPERATORS
                and lowered in NARROWING_KEYS
                and _concrete(lowered, operator, values)
            ):
                return True, []
            known_key = lowered in NARROWING_KEYS or lowered in OTHER_KNOWN_KEYS or (
                lowered.startswith("kms:encryptioncontext:")
            )
            if operator not in KNOWN_OPERATORS or not known_key:
                unknown.append(f"{operator} {key}")
    return False, unknown


def classify_statements(policy: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """(open, undecided) Allow statements that a wildcard principal (or NotPrincipal) matches:
    open when no Condition entry narrows the callers and every entry is understood,
    undecided when an entry the check does not know might (summaries)."""
    raw = policy.get("Statement", [])
    found, undecided = [], []
    for index, statement in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        names = _flatten(statement.get("Principal"))
        not_principal = "NotPrincipal" in statement
        if not (not_principal or any("*" in n for n in names)):
            continue
        summary = {
            "sid": statement.get("Sid") or f"#{index}",
            "principal": "NotPrincipal" if not_principal else names,
            "action": statement.get("Action"),
        }
        narrows, unknown = (
            _condition_verdict(statement["Condition"]) if "Condition" in statement
            else (False, [])
        )
        if narrows:
            continue
        if unknown:
            undecided.append({**summary, "not_understood": unknown})
        else:
            found.append({**summary, "condition": statement.get("Condition")})
    return found, undecided


def open_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """Allow statements that any principal matches with no narrowing condition (summaries)."""
    return classify_statements(policy)[0]


def _flatten(principal: Any) -> list[str]:
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    if isinstance(principal, dict):
        return [name for value in principal.values() for name in _flatten(value)]
    if isinstance(principal, list):
        return [name for value in principal for name in _flatten(value)]
    return [str(principal)]


@rule("ENC-002")
def test_enc_002(host: Any, evidence: dict[str, Any]) -> None:
    """The KMS key policy grants no wildcard principal without a condition."""
    client, meta = _describe(host, evidence)
    raw = _kms_call(client, "get_key_policy", KeyId=meta["KeyId"], PolicyName="default")
    try:
        policy = json.loads(raw.get("Policy") or "{}")
    except ValueError:
        raise EncryptionStateError("the key policy KMS returned is not JSON") from None
    statements = policy.get("Statement", [])
    evidence["statements"] = len(statements) if isinstance(statements, list) else 1
    evidence["open_statements"], undecided = classify_statements(policy)
    evidence["undecided_statements"] = undecided
    assert not evidence["open_statements"], (
        f"the key policy of {evidence['alias']} allows any principal without a Condition that "
        "limits the callers to named accounts, organisations or principals in "
        + ", ".join(s["sid"] for s in evidence["open_statements"])
        + (f" (undecided: {', '.join(s['sid'] for s in undecided)})" if undecided else "")
    )
    if undecided:
        raise EncryptionStateError(
            "the key policy allows any principal under conditions this check does not know, "
            "so it cannot tell whether they limit the callers: "
            + "; ".join(f"{s['sid']}: {', '.join(s['not_understood'])}" for s in undecided)
        )


# -- the configuration file itself ----------------------------------------------------------


@rule("ENC-003")
def test_enc_003(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """The node's field encryption configuration is present and protected."""
    max_mode = int(str(params["max_mode"]), 8)
    conf = host.file(CONFIG)
    evidence["path"] = CONFIG
    evidence["exists"] = conf.exists
    assert conf.exists, f"{CONFIG} does not exist"
    assert conf.is_file and not conf.is_symlink, f"{CONFIG} is not a regular file"
    evidence.update({"owner": conf.user, "group": conf.group, "mode": f"{conf.mode:04o}"})
    parent = host.file(posixpath.dirname(CONFIG))
    evidence["directory"] = {
        "path": posixpath.dirname(CONFIG), "owner": parent.user, "mode": f"{parent.mode:04o}"
    }
    assert conf.uid == 0, f"{CONFIG} is owned by {conf.user}, not root"
    assert conf.mode & ~max_mode == 0, (
        f"{CONFIG} has mode {conf.mode:04o}, more permissive than {max_mode:04o}"
    )
    assert parent.uid == 0 and parent.mode & 0o022 == 0, (
        f"{parent.path} (owner {parent.user}, mode {parent.mode:04o}) lets others replace "
        "the configuration"
    )
    problems = _config_problems(_read_config(host))
    evidence["problems"] = problems
    assert not problems, f"{CONFIG}: " + "; ".join(problems)


# -- plaintext account data in the data directories -----------------------------------------

# Runs on the node with the venv's Python, so it has field_encryption's detector at hand.
_SCANNER = r"""
import csv, json, os, pathlib, subprocess, sys
from field_encryption.envelope import is_ciphertext
from field_encryption.scan import scan_text
job = json.loads(sys.argv[1])
RECORD = {".jsonl", ".ndjson", ".json", ".csv"}
out = {"files": 0, "record_files": 0, "parquet_files": 0, "text_files": 0, "binary_skipped": 0,
       "counts": {}, "findings": [], "errors": [], "notes": []}
def add(kind, where, masked):
    out["counts"][kind] = out["counts"].get(kind, 0) + 1
    if len(out["findings"]) < job["shown"]:
        out["findings"].append({"kind": kind, "at": where, "masked": masked})
def walk(value, hint, steps, found):
    # Every string and integer of a record, the header and index fields included; only a
    # value that parses as a valid field ciphertext envelope is skipped.
    if isinstance(value, dict):
        for key, item in value.items():
            walk(item, str(key), steps + [str(key)], found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            walk(item, hint, steps + [str(index)], found)
    elif isinstance(value, str) and is_ciphertext(value):
        return
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        for kind, masked in scan_text(str(value), hint):
            found.append((kind, ".".join(steps) or "$", masked))
def records(path, ext):
    with open(path, encoding="utf-8", newline="") as fh:
        if ext in (".jsonl", ".ndjson"):
            for line in fh:
                if line.strip():
                    yield json.loads(line)
        elif ext == ".json":
            doc = json.load(fh)
            yield from (doc if isinstance(doc, list) else [doc])
        else:
            for row in csv.DictReader(fh):
                out_row = {}
                for key, cell in row.items():
                    if isinstance(cell, str) and cell[:1] in "{[":
                        try:
                            cell = json.loads(cell)
                        except ValueError:
                            pass
                    out_row[str(key)] = cell
                yield out_row
def record_scan(path, ext):
    found = []
    for number, record in enumerate(records(path, ext), 1):
        hits = []
        walk(record, "", [], hits)
        found += [(kind, f"{path} record {number} {where}", masked)
                  for kind, where, masked in hits]
    return found
PARQUET = {".parquet", ".parq"}
def parquet_scan(path, fields):
    # Parquet is binary: read it with pyarrow (field_encryption.parquet) or report that it
    # could not be read; never skip it as an unreadable blob.
    try:
        import pyarrow.parquet as pq
        from field_encryption import parquet as fp
    except ImportError as exc:
        out["errors"].append(f"{path}: a Parquet file, and the scanner cannot read Parquet "
                             f"({exc}): install pyarrow next to field-encrypt (the role "
                             "field_encryption does, given field_encryption_columnar_wheelhouse)")
        return
    try:
        names = pq.read_schema(path).names
    except Exception as exc:
        # only a file that ends in PARE (Parquet's encrypted-footer magic) is one whose
        # footer is encrypted; a truncated, corrupt or unreadable file is an error
        try:
            with open(path, "rb") as fh:
                fh.seek(-4, 2)
                magic = fh.read(4)
        except OSError:
            magic = b""
        if magic != b"PARE":
            out["errors"].append(f"{path}: not readable as Parquet ({exc})")
            return
        out["parquet_files"] += 1
        out["notes"].append(f"{path}: Parquet with an encrypted footer, nothing readable "
                            "without the key")
        return
    wanted = [f for f in fields if f in names]
    try:
        if fp.fields_mode(pathlib.Path(path)):
            found, _ = fp.verify_fields_dataset(pathlib.Path(path), wanted, max_findings=50)
        else:
            found, _ = fp.verify_dataset(pathlib.Path(path), wanted, max_findings=50)
    except Exception as exc:
        out["errors"].append(f"{path}: not readable as Parquet ({exc})")
        return
    out["parquet_files"] += 1
    for f in found:
        add(f.kind, f"{path} column {f.column}", f.masked)
def text_scan(path):
    with open(path, "rb") as fh:
        if b"\0" in fh.read(8192):
            out["binary_skipped"] += 1
            return
        fh.seek(0)
        out["text_files"] += 1
        for number, raw in enumerate(fh, 1):
            for kind, masked in scan_text(raw.decode("utf-8", "replace")):
                add(kind, f"{path}:{number}", masked)
for d in job["dirs"]:
    if not os.path.isdir(d["path"]):
        out["errors"].append(f"{d['path']} is not a directory")
        continue
    for root, dirs, files in os.walk(d["path"]):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                out["notes"].append(f"{path}: not a regular file, not scanned")
                continue
            out["files"] += 1
            if out["files"] > job["max_files"]:
                out["errors"].append(f"more than {job['max_files']} files (max_files)")
                print(json.dumps(out))
                sys.exit(0)
            if os.path.splitext(name)[1].lower() in PARQUET:
                parquet_scan(path, d["fields"])
                continue
            if os.path.splitext(name)[1].lower() in RECORD:
                argv = [job["tool"], "verify", path, "--format", "json", "--max-findings", "50"]
                for field in d["fields"]:
                    argv += ["--optional", field]
                proc = subprocess.run(argv, capture_output=True, text=True)
                if proc.returncode in (0, 2):
                    try:
                        own = record_scan(path, os.path.splitext(name)[1].lower())
                    except (ValueError, UnicodeDecodeError, OSError) as exc:
                        out["notes"].append(f"{path}: records not readable here ({exc}), "
                                            "scanned as text")
                    else:
                        out["record_files"] += 1
                        # verify for the field policy; card numbers and SSNs from own scan,
                        # which does not skip a value for merely starting with fe1:
                        for f in json.loads(proc.stdout)["findings"]:
                            if f["kind"] not in ("pan", "ssn"):
                                add(f["kind"], f"{path} record {f['record']} {f['path']}",
                                    f["masked"])
                        for kind, where, masked in own:
                            add(kind, where, masked)
                        continue
                else:
                    out["notes"].append(f"{path}: not readable as records, scanned as text")
            text_scan(path)
print(json.dumps(out))
"""


def _tool(host: Any, document: dict[str, Any]) -> str:
    tool = str(document.get("field_encrypt") or DEFAULT_TOOL)
    found = host.run("readlink -f -- \"$(command -v %s)\"", tool)
    path = found.stdout.strip()
    if found.rc != 0 or not path:
        raise EncryptionStateError(f"field-encrypt ({tool}) is not installed on the node")
    return path


def _scan_job(document: dict[str, Any], max_files: int) -> dict[str, Any]:
    tables = document.get("tables") if isinstance(document.get("tables"), dict) else {}
    dirs = []
    for entry in document.get("data_dirs") or []:
        if not isinstance(entry, dict) or not str(entry.get("path", "")).startswith("/"):
            raise EncryptionStateError(f"{CONFIG}: data_dirs entry {entry!r} has no absolute path")
        policy = tables.get(entry.get("table"), {}) if isinstance(tables, dict) else {}
        fields = [*policy.get("fields", []), *policy.get("optional", [])]
        dirs.append({"path": entry["path"], "fields": [str(f) for f in fields]})
    return {"dirs": dirs, "max_files": max_files, "shown": MAX_FINDINGS_SHOWN}


_DIGIT_RUN = re.compile(r"\d[\d -]{7,}\d")


def _masked(text: str) -> str:
    """Last line of defence: no run of digits longer than four leaves the controller."""
    from field_encryption.scan import mask

    return _DIGIT_RUN.sub(lambda m: mask(m.group(0)), text)


@rule("ENC-004")
def test_enc_004(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """No plaintext card numbers or SSNs in the configured data directories."""
    document = _read_config(host)
    job = _scan_job(document, int(params["max_files"]))
    evidence["data_dirs"] = [d["path"] for d in job["dirs"]]
    if not job["dirs"]:
        # Nothing on the node says positively that it stores no account data: an empty list
        # may as well be a lost setting, and scanning nothing proves nothing.
        raise EncryptionStateError(
            f"{CONFIG} lists no data_dirs: there is nothing to scan, so the absence of plaintext "
            "account data cannot be shown (list the node's data directories)"
        )
    tool = _tool(host, document)
    job["tool"] = tool
    python = posixpath.join(posixpath.dirname(tool), "python")
    proc = host.run("%s -c %s %s", python, _SCANNER, json.dumps(job))
    if proc.rc != 0:
        raise EncryptionStateError(
            f"the scan on the node failed ({proc.rc}): {proc.stderr.strip()[-300:]}"
        )
    result = json.loads(proc.stdout)
    for finding in result["findings"]:
        finding["masked"] = _masked(finding["masked"])
    evidence.update({k: result[k] for k in (
        "files", "record_files", "parquet_files", "text_files", "binary_skipped", "counts",
        "findings", "notes"
    )})
    if result["errors"]:
        raise EncryptionStateError("; ".join(result["errors"]))
    assert not result["counts"], (
        "plaintext account data in the data directories: "
        + ", ".join(f"{n} {k}" for k, n in sorted(result["counts"].items()))
    )
