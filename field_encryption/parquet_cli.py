"""`field-encrypt encrypt|decrypt|rewrap|verify` on Parquet files and dataset folders.

The commands of field_encryption.cli hand a Parquet input (a `.parquet` file, a folder, or
`--input-format parquet`) to these functions. Parquet Modular Encryption encrypts whole
columns: the options that shape a record's fields (--optional, --deterministic,
--blind-index, --vault, --allow-legacy-v1) do not apply and are refused. The CLI's keyring
wraps both Parquet master keys, named `columns` and `footer` in the files.

`--parquet-mode fields` writes the library's per-field envelope into the columns instead
(each row a record with its `_fe` header column), the form field_encryption.spark writes;
decrypt and verify tell the two forms apart by the header column.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from field_encryption.cache import CacheLimits
from field_encryption.client import FieldEncryption
from field_encryption.errors import FormatError, UsageError
from field_encryption.keyrings import Keyring
from field_encryption.parquet import (
    ParquetCrypto,
    ParquetPolicy,
    dataset_files,
    decrypt_dataset,
    decrypt_fields_dataset,
    encrypt_dataset,
    encrypt_fields_dataset,
    fields_mode,
    is_parquet,
    rewrap_dataset,
    verify_dataset,
    verify_fields_dataset,
)

COLUMN_KEY = "columns"
FOOTER_KEY = "footer"



def _echo(text: str, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)

def wanted(input_path: str, explicit: str | None) -> bool:
    """Whether the input is Parquet: --input-format parquet, or a .parquet file or folder."""
    if explicit:
        return explicit == "parquet"
    return input_path != "-" and is_parquet(input_path)


def refuse(kwargs: dict[str, Any], *names: str) -> None:
    for name in names:
        if kwargs.get(name):
            option = "--" + name.replace("_path", "").replace("_", "-")
            raise UsageError(
                f"{option} does not apply to Parquet: Parquet Modular Encryption encrypts "
                "whole columns")


def crypto_for(keyring: Keyring, wrap: Keyring | None = None) -> ParquetCrypto:
    return ParquetCrypto(lambda _name: keyring, (lambda _name: wrap) if wrap else None)


def _paths(kwargs: dict[str, Any], folder_in_place: bool = False) -> tuple[Path, Path]:
    source = Path(kwargs["input_path"])
    if kwargs.get("in_place"):
        if kwargs.get("output_path"):
            raise UsageError("--in-place and --output exclude each other")
        if source.is_dir() and not folder_in_place:
            raise UsageError("a dataset folder is written to a new folder: pass --output")
        return source, source
    output = kwargs.get("output_path")
    if not output or output == "-":
        raise UsageError("Parquet goes to a file or folder: pass --output PATH")
    if Path(output).resolve() == source.resolve():
        raise UsageError("output is the input: use --in-place instead")
    return source, Path(output)


def _fields_encryptor(keyring: Keyring, kwargs: dict[str, Any]) -> FieldEncryption:
    limits = (CacheLimits(max_age=kwargs["max_key_age"], max_uses=kwargs["max_key_uses"])
              if "max_key_uses" in kwargs else None)
    return FieldEncryption(keyring=keyring, namespace=kwargs["namespace"], record_id_field=None,
                           cache_limits=limits)


def _record_id_column(source: Path, kwargs: dict[str, Any]) -> str | None:
    """--record-id-field names the id column in fields mode; the default `_id` only where the
    data has such a column (else each record gets a random id in its header)."""
    import pyarrow.parquet as pq

    name = kwargs.get("record_id_field") or None
    if name is None:
        return None
    first = source if source.is_file() else source / dataset_files(source)[0]
    try:
        names = pq.read_schema(first).names
    except (OSError, ValueError) as exc:
        raise FormatError(f"{first}: not readable as Parquet ({exc})") from None
    if name in names:
        return name
    if name == "_id":
        return None
    raise UsageError(f"--record-id-field {name}: no such column in {first}")


def encrypt(keyring: Keyring, kwargs: dict[str, Any]) -> int:
    refuse(kwargs, "optional", "deterministic", "blind_index", "vault_path")
    if not kwargs["fields"]:
        raise UsageError("select at least one sensitive column with --field")
    if kwargs["parquet_mode"] == "fields":
        if kwargs["plaintext_footer"] or kwargs["external_key_material"]:
            raise UsageError("--plaintext-footer and --external-key-material are for "
                                   "--parquet-mode pme")
        source, destination = _paths(kwargs)
        rows = encrypt_fields_dataset(_fields_encryptor(keyring, kwargs), source, destination,
                                      list(kwargs["fields"]), _record_id_column(source, kwargs))
        _echo(f"encrypted {rows} rows of {source} into {destination} (per-field "
                   f"envelope): columns {', '.join(kwargs['fields'])}", err=True)
        return 0
    policy = ParquetPolicy(column_keys={COLUMN_KEY: list(kwargs["fields"])},
                           footer_key=FOOTER_KEY, plaintext_footer=kwargs["plaintext_footer"],
                           external_key_material=kwargs["external_key_material"])
    source, destination = _paths(kwargs)
    crypto = crypto_for(keyring)
    rows = encrypt_dataset(crypto, source, destination, policy)
    if policy.plaintext_footer:
        _echo("field-encrypt: plaintext footer: the schema, row counts and the columns not "
                   "selected are readable without a key (--plaintext-footer)", err=True)
    _echo(f"encrypted {rows} rows of {source} into {destination}: columns "
               f"{', '.join(policy.sensitive_columns)} (KMS calls: {crypto.counter.total})",
               err=True)
    return 0


def decrypt(keyring: Keyring, kwargs: dict[str, Any]) -> int:
    refuse(kwargs, "fields", "vault_path", "allow_legacy_v1")
    source, destination = _paths(kwargs)
    if fields_mode(source):
        rows = decrypt_fields_dataset(_fields_encryptor(keyring, kwargs), source, destination,
                                      _record_id_column(source, kwargs))
    else:
        rows = decrypt_dataset(crypto_for(keyring), source, destination)
    _echo(f"decrypted {rows} rows of {source} into {destination}", err=True)
    return 0


def rewrap(source_keyring: Keyring, target: Keyring, kwargs: dict[str, Any]) -> int:
    if fields_mode(Path(kwargs["input_path"])):
        raise UsageError("field-encrypted Parquet (a _fe column) is rewrapped by "
                               "decrypting and encrypting again (or on Spark); rewrap --in-place "
                               "is for Parquet Modular Encryption with external key material")
    if not kwargs.get("in_place") or kwargs.get("output_path"):
        raise UsageError("a Parquet rewrap rewrites the key material beside the files, "
                               "not the data: pass --in-place")
    files = rewrap_dataset(crypto_for(source_keyring, target), Path(kwargs["input_path"]))
    _echo(f"rewrapped the keys of {files} Parquet file(s)", err=True)
    return 0


def verify(keyring: Keyring | None, kwargs: dict[str, Any]) -> int:
    refuse(kwargs, "vault_path", "allow_legacy_v1")
    required = [*kwargs["fields"], *kwargs["optional"]]
    crypto = crypto_for(keyring) if keyring is not None else None
    source = Path(kwargs["input_path"])
    if fields_mode(source):
        fe = _fields_encryptor(keyring, kwargs) if keyring is not None else None
        findings, summary = verify_fields_dataset(source, required, fe,
                                                  max(kwargs["max_findings"], 0),
                                                  _record_id_column(source, kwargs))
    else:
        findings, summary = verify_dataset(source, required, crypto,
                                           max(kwargs["max_findings"], 0))
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    if kwargs["report_format"] == "json":
        _echo(json.dumps({
            "tool": "field-encrypt verify", "report_version": 2, "format": "parquet",
            "input": kwargs["input_path"], "files": summary["files"], "rows": summary["rows"],
            "fields": required, "status": "findings" if findings else "clean",
            "plaintext_footer": summary["plaintext_footer"],
            "authenticated": crypto is not None, "mode": summary.get("mode", "pme"),
            "encrypted_columns": summary["encrypted_columns"], "counts": counts,
            "findings": [f.__dict__ for f in findings],
        }, indent=2))
    else:
        for f in findings:
            detail = f" {f.masked}" if f.masked else ""
            detail += f": {f.detail}" if f.detail else ""
            _echo(f"{f.file}: {f.kind} in column {f.column}{detail}")
        checked = "read and authenticated with the key" if crypto else "not authenticated (no key)"
        text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no findings"
        _echo(f"{summary['files']} Parquet file(s), {summary['rows']} rows, {checked}: "
                   f"{text}")
    return 2 if findings else 0
