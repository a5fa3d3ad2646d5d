"""Parquet Modular Encryption (PME) under the project's keyrings (AWS KMS, or a local key
file for development).

Parquet encrypts each sensitive column's pages and metadata with AES-GCM under a column
data key, and the footer under a footer key (in plaintext-footer mode the footer stays
readable and is signed, so non-sensitive columns read without any key and a changed footer is
still caught by a reader that has the key). pyarrow does the cryptography; this module gives
it a KMS client over our keyrings:

- a master key identifier in the policy (`column_keys`, `footer_key`) is a name (letters,
  digits, `_ . / -`: Parquet's key properties use `:`, `,` and `;` as separators, so a KMS
  ARN cannot be one); the resolver maps each name to a keyring (an AWS KMS key id, ARN or
  alias, or the local key file);
- with double wrapping (the default) data keys are wrapped under key-encryption keys (KEKs)
  that pyarrow makes and caches, and only the KEKs go to KMS: a few KMS calls per master key
  and process, not per file, column or row;
- a wrapped key is the keyring's wrapped data key records (JSON), bound to the master key
  identifier through the encryption context, so a key wrapped for one identifier does not
  unwrap as another's;
- key material is kept inside the file by default; `external_key_material=True` keeps it
  in a small JSON file beside each Parquet file, which is what lets `rewrap` move a file to a
  new master key (or a rotated one) without rewriting the data.

Safe defaults: the footer is encrypted (plaintext_footer=False), AES-GCM (not GCM-CTR), 256-
bit data keys. A plaintext footer is an explicit choice, reported by `describe()`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from field_encryption.errors import (
    ConfigurationError,
    DecryptionError,
    FieldEncryptionError,
    FormatError,
)
from field_encryption.keyrings.base import EncryptedDataKey, Keyring

CONTEXT_KEY = "m7guard:parquet-master-key"
# Parquet's keys: 16-byte key-encryption keys (double wrapping), data keys of 128-256 bits
PARQUET_KEY_LENGTHS = (16, 24, 32)
MASTER_KEY_NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")
KEY_MATERIAL_PREFIX = "_KEY_MATERIAL_FOR_"
Resolver = Callable[[str], Keyring]


def _pe() -> Any:
    try:
        import pyarrow.parquet.encryption as pe
    except ImportError as exc:  # the library works without pyarrow for JSON Lines and CSV
        raise ConfigurationError(
            "Parquet encryption needs pyarrow>=16 (pip install 'm7guard[parquet]')") from exc
    return pe


@dataclass(frozen=True)
class ParquetPolicy:
    """Which master key protects which columns, and the footer.

    column_keys: master key identifier -> column names (a nested field as `a.b`).
    footer_key: the master key identifier of the footer key.
    """

    column_keys: Mapping[str, Sequence[str]]
    footer_key: str
    plaintext_footer: bool = False
    double_wrapping: bool = True
    external_key_material: bool = False
    cache_lifetime: timedelta = timedelta(minutes=10)
    data_key_length_bits: int = 256

    def __post_init__(self) -> None:
        if not self.footer_key:
            raise ConfigurationError("footer_key: a master key identifier is required")
        if not self.column_keys:
            raise ConfigurationError("column_keys: name at least one sensitive column")
        seen: dict[str, str] = {}
        for name in (self.footer_key, *self.column_keys):
            if not MASTER_KEY_NAME.fullmatch(name):
                raise ConfigurationError(
                    f"master key name {name!r}: letters, digits and _ . / - only (Parquet's key "
                    "properties separate with : , ;); map the name to a KMS key id or ARN")
        if self.footer_key in self.column_keys:
            raise ConfigurationError(
                f"footer_key {self.footer_key!r} is also a column key: give the footer its own "
                "master key, so a reader can tell a column stored in plaintext from an "
                "encrypted one (verify reads the footer with the footer key alone)")
        for master, columns in self.column_keys.items():
            if isinstance(columns, str) or not columns:
                raise ConfigurationError(f"column_keys[{master!r}]: a list of column names")
            for column in columns:
                if column in seen:
                    raise ConfigurationError(
                        f"column_keys: column {column!r} is under two master keys "
                        f"({seen[column]!r} and {master!r})")
                seen[column] = master
        if self.data_key_length_bits not in (128, 192, 256):
            raise ConfigurationError("data_key_length_bits: 128, 192 or 256")

    @property
    def sensitive_columns(self) -> list[str]:
        return sorted(c for columns in self.column_keys.values() for c in columns)

    @property
    def master_keys(self) -> list[str]:
        return sorted({self.footer_key, *self.column_keys})

    def describe(self) -> dict[str, Any]:
        """What a report or log may say about the policy (names only, never key material)."""
        return {
            "footer_key": self.footer_key,
            "column_keys": {k: sorted(v) for k, v in sorted(self.column_keys.items())},
            "plaintext_footer": self.plaintext_footer,
            "double_wrapping": self.double_wrapping,
            "external_key_material": self.external_key_material,
            "algorithm": "AES_GCM_V1",
            "data_key_length_bits": self.data_key_length_bits,
        }

    def encryption_configuration(self) -> Any:
        pe = _pe()
        return pe.EncryptionConfiguration(
            footer_key=self.footer_key,
            column_keys={k: list(v) for k, v in self.column_keys.items()},
            encryption_algorithm="AES_GCM_V1",
            plaintext_footer=self.plaintext_footer,
            double_wrapping=self.double_wrapping,
            cache_lifetime=self.cache_lifetime,
            internal_key_material=not self.external_key_material,
            data_key_length_bits=self.data_key_length_bits,
        )


@dataclass
class KmsCallCounter:
    """How many wrap and unwrap calls reached the keyrings (each one KMS call for AWS)."""

    wraps: int = 0
    unwraps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return self.wraps + self.unwraps


def _client_class() -> type:
    pe = _pe()

    class KeyringKmsClient(pe.KmsClient):  # type: ignore[misc,name-defined]
        """pyarrow's KMS client interface over a keyring per master key identifier."""

        def __init__(self, resolve: Resolver, counter: KmsCallCounter,
                     wrap_resolve: Resolver | None = None) -> None:
            super().__init__()
            self._resolve = resolve
            self._wrap_resolve = wrap_resolve or resolve
            self._counter = counter

        def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
            keyring = self._wrap_resolve(master_key_identifier)
            edks = keyring.wrap(bytes(key_bytes), {CONTEXT_KEY: master_key_identifier})
            with self._counter.lock:
                self._counter.wraps += 1
            return json.dumps({"v": 1, "keys": [e.to_json() for e in edks]},
                              separators=(",", ":"))

        def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
            try:
                doc = json.loads(wrapped_key)
                if type(doc) is not dict or doc.get("v") != 1 or not isinstance(
                        doc.get("keys"), list):
                    raise FormatError("wrapped Parquet key: not a version 1 key record")
                edks = [EncryptedDataKey.from_json(item) for item in doc["keys"]]
            except (ValueError, TypeError) as exc:
                raise FormatError(f"wrapped Parquet key: {exc}") from None
            keyring = self._resolve(master_key_identifier)
            with self._counter.lock:
                self._counter.unwraps += 1
            return keyring.unwrap(edks, {CONTEXT_KEY: master_key_identifier},
                                  key_lengths=PARQUET_KEY_LENGTHS)

    return KeyringKmsClient


class ParquetCrypto:
    """Encrypt, decrypt and rewrap Parquet files and datasets under a policy.

    resolve: master key identifier -> the Keyring that unwraps (and wraps) under it (see
    `keyring_resolver`); wrap_resolve, when given, the Keyring that wraps: a rewrap reads
    with one and writes with the other. One instance caches the KEKs for cache_lifetime:
    make one per process (a Spark executor, the CLI) and reuse it.
    """

    def __init__(self, resolve: Resolver, wrap_resolve: Resolver | None = None) -> None:
        pe = _pe()
        self.counter = KmsCallCounter()
        client_class = _client_class()
        self._resolve = resolve
        self._factory = pe.CryptoFactory(
            lambda _config: client_class(resolve, self.counter, wrap_resolve))
        self._kms_config = pe.KmsConnectionConfig()

    # -- properties ---------------------------------------------------------------------
    def encryption_properties(self, policy: ParquetPolicy, path: Path | None = None) -> Any:
        """New file encryption properties: one set per file (pyarrow refuses reuse)."""
        if policy.external_key_material and path is None:
            raise ConfigurationError("external key material needs the Parquet file's path")
        return self._factory.file_encryption_properties(
            self._kms_config, policy.encryption_configuration(),
            str(path) if policy.external_key_material else None)

    def decryption_properties(self, path: Path | None = None,
                              cache_lifetime: timedelta = timedelta(minutes=10)) -> Any:
        pe = _pe()
        return self._factory.file_decryption_properties(
            self._kms_config, pe.DecryptionConfiguration(cache_lifetime=cache_lifetime),
            str(path) if path is not None else None)

    # -- files --------------------------------------------------------------------------
    def write_table(self, table: Any, destination: Path, policy: ParquetPolicy,
                    **write_options: Any) -> None:
        """Write table encrypted under policy; the destination appears complete or not at
        all (a temporary file beside it is renamed over it)."""
        import pyarrow.parquet as pq

        missing = [c for c in policy.sensitive_columns if not _has_column(table.schema, c)]
        if missing:
            raise ConfigurationError(
                f"column_keys: no column {', '.join(map(repr, missing))} in the table "
                f"(columns: {', '.join(table.schema.names)})")
        destination = Path(destination)
        if not destination.parent.is_dir():
            raise ConfigurationError(f"output directory {destination.parent} does not exist")
        if policy.external_key_material and (destination.exists()
                                             or _key_material(destination).exists()):
            # the data and its key material are two files: replacing both cannot be one
            # step, so an existing pair is never overwritten
            raise ConfigurationError(f"{destination} exists: with external key material "
                                     "write to a new path")
        fd, name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".fe-tmp",
                                    dir=destination.parent)
        os.close(fd)
        temp = Path(name)
        try:
            props = self.encryption_properties(policy, temp)
            pq.write_table(table, temp, encryption_properties=props, **write_options)
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
            if policy.external_key_material:
                _key_material(temp).replace(_key_material(destination))
            temp.replace(destination)
        finally:
            temp.unlink(missing_ok=True)
            if policy.external_key_material:
                _key_material(temp).unlink(missing_ok=True)

    def read_table(self, source: Path, columns: Iterable[str] | None = None) -> Any:
        """Read (and authenticate) an encrypted Parquet file."""
        import pyarrow.parquet as pq

        source = Path(source)
        try:
            return pq.read_table(source, columns=list(columns) if columns else None,
                                 decryption_properties=self.decryption_properties(source))
        except FieldEncryptionError:
            raise
        except (OSError, ValueError) as exc:  # pyarrow: OSError, ArrowInvalid (a ValueError)
            raise _decryption_error(source, exc) from None

    def plaintext_columns(self, source: Path, names: Sequence[str]) -> list[str]:
        """The columns of a file with an encrypted footer that read with the footer key
        alone, that is, stored in plaintext. The footer's master key is the one a reader
        asks for to read the schema; each column is then read by a reader that has no
        other key."""
        import pyarrow.parquet as pq

        source = Path(source)
        asked: list[str] = []

        def recording(name: str) -> Keyring:
            asked.append(name)
            return self._resolve(name)

        footer_reader = ParquetCrypto(recording)
        try:
            pq.read_schema(source, decryption_properties=footer_reader.decryption_properties(
                source))
        except (OSError, ValueError) as exc:
            raise _decryption_error(source, exc) from None
        footer = set(asked)

        def footer_only(name: str) -> Keyring:
            if name not in footer:
                raise _NotTheFooterKey(name)
            return self._resolve(name)

        limited = ParquetCrypto(footer_only)
        plain = []
        for column in names:
            try:
                pq.read_table(source, columns=[column],
                              decryption_properties=limited.decryption_properties(source))
            except _NotTheFooterKey:
                continue
            except (OSError, ValueError) as exc:
                if "decrypt" in str(exc).lower():
                    continue
                raise _decryption_error(source, exc) from None
            plain.append(column)
        return plain

    def rewrap(self, source: Path) -> None:
        """Wrap a file's keys under the current master keys (after rotation of the KMS key,
        or under the keyrings of wrap_resolve). Only files written with external key material
        can be rewrapped without rewriting the data."""
        source = Path(source)
        if not _key_material(source).exists():
            raise ConfigurationError(
                f"{source}: its key material is inside the file (no {_key_material(source).name}"
                " beside it); write with external_key_material=True to rewrap in place, or "
                "decrypt and encrypt again")
        self._factory.rotate_master_keys(self._kms_config, str(source), double_wrapping=True)


class _NotTheFooterKey(ConfigurationError):
    """A reader holding only the footer key was asked for another master key."""


def _has_column(schema: Any, dotted: str) -> bool:
    head, *rest = dotted.split(".")
    if head not in schema.names:
        return False
    current = schema.field(head).type
    for part in rest:
        names = [current.field(i).name for i in range(current.num_fields)] if hasattr(
            current, "num_fields") else []
        if part not in names:
            return False
        current = current.field(names.index(part)).type
    return True


def _key_material(path: Path) -> Path:
    return path.with_name(f"{KEY_MATERIAL_PREFIX}{path.name}.json")


def _decryption_error(source: Path, exc: Exception) -> DecryptionError:
    text = str(exc)
    lower = text.lower()
    if any(word in lower for word in ("gcm", "authentication", "tag", "signature",
                                      "decryption finalization")):
        return DecryptionError(f"{source}: authentication failed (the file was changed or "
                               f"the key is wrong): {text}")
    return DecryptionError(f"{source}: cannot be decrypted: {text}")


def keyring_resolver(build: Callable[[str], Keyring]) -> Resolver:
    """A resolver that builds one keyring per master key identifier and reuses it."""
    made: dict[str, Keyring] = {}
    lock = threading.Lock()

    def resolve(identifier: str) -> Keyring:
        with lock:
            if identifier not in made:
                made[identifier] = build(identifier)
            return made[identifier]

    return resolve


# -- files and dataset folders ------------------------------------------------------------
PARQUET_SUFFIXES = (".parquet", ".parq")


def is_parquet(path: str | Path) -> bool:
    """A Parquet file by its name, or a folder (a dataset)."""
    p = Path(path)
    return p.suffix.lower() in PARQUET_SUFFIXES or p.is_dir()


def dataset_files(source: Path) -> list[Path]:
    """The Parquet files of a file or a dataset folder (partition folders k=v kept), relative
    to the folder; refuses a folder without any, and summary files that would carry column
    statistics in the clear (_metadata, _common_metadata)."""
    if source.is_file():
        return [Path(source.name)]
    if not source.is_dir():
        raise ConfigurationError(f"{source}: no such Parquet file or dataset folder")
    found = sorted(p.relative_to(source) for p in source.rglob("*")
                   if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
                   and not any(part.startswith((".", "_")) for part in
                               p.relative_to(source).parts))
    summaries = sorted(p.relative_to(source) for p in source.rglob("_*metadata"))
    if summaries:
        raise ConfigurationError(
            f"{source}: summary files {', '.join(map(str, summaries))} hold column statistics "
            "in the clear; remove them (Spark writes none by default) before encrypting")
    if not found:
        raise ConfigurationError(f"{source}: no .parquet file in the folder")
    return found


def _atomic_tree(destination: Path, fill: Callable[[Path], int]) -> int:
    """Fill a temporary folder beside destination and rename it into place: a dataset folder
    appears complete or not at all. An existing destination is refused (never merged)."""
    if destination.exists():
        raise ConfigurationError(f"{destination} exists: give a new output path")
    parent = destination.parent
    if not parent.is_dir():
        raise ConfigurationError(f"output directory {parent} does not exist")
    temp = parent / f".{destination.name}.fe-tmp"
    if temp.exists():
        raise ConfigurationError(f"{temp} is left from an interrupted run: remove it first")
    temp.mkdir()
    try:
        count = fill(temp)
        temp.replace(destination)
    except BaseException:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
        raise
    return count


def _transform_files(source: Path, destination: Path, one: Callable[[Path, Path], int]) -> int:
    """one(src, dst) for a file, or for each file of a folder into a new folder."""
    files = dataset_files(source)
    if source.is_file():
        return one(source, destination)

    def fill(temp: Path) -> int:
        rows = 0
        for rel in files:
            (temp / rel).parent.mkdir(parents=True, exist_ok=True)
            rows += one(source / rel, temp / rel)
        return rows

    return _atomic_tree(destination, fill)


def encrypt_dataset(crypto: ParquetCrypto, source: Path, destination: Path,
                    policy: ParquetPolicy) -> int:
    """Encrypt a Parquet file or dataset folder into destination (file or folder); returns
    the number of rows. Each file gets its own keys (pyarrow makes new properties per file)."""

    def one(src: Path, dst: Path) -> int:
        if encrypted_footer(src):
            raise ConfigurationError(f"{src} is already encrypted (its footer is)")
        table = _read_plain(src)
        crypto.write_table(table, dst, policy)
        return table.num_rows

    return _transform_files(Path(source), Path(destination), one)


def decrypt_dataset(crypto: ParquetCrypto, source: Path, destination: Path) -> int:
    """Decrypt (and authenticate) a Parquet file or dataset folder into plain Parquet."""
    import pyarrow.parquet as pq

    from field_encryption.atomic import atomic_output

    def one(src: Path, dst: Path) -> int:
        table = crypto.read_table(src)
        with atomic_output(dst, binary=True) as handle:
            pq.write_table(table, handle)
        return table.num_rows

    return _transform_files(Path(source), Path(destination), one)


def rewrap_dataset(crypto: ParquetCrypto, source: Path) -> int:
    """Rewrap every file of a file or dataset folder written with external key material;
    returns the number of files."""
    source = Path(source)
    files = dataset_files(source)
    base = source.parent if source.is_file() else source
    for rel in files:
        crypto.rewrap(base / rel)
    return len(files)


@dataclass(frozen=True)
class ColumnFinding:
    file: str
    column: str
    kind: str  # "plaintext-column", "pan", "ssn", "unreadable"
    masked: str = ""
    detail: str = ""


def _probe(path: Path, column: str) -> bool:
    """Whether the column reads without any key (stored in plaintext)."""
    import pyarrow.parquet as pq

    try:
        pq.read_table(path, columns=[column], partitioning=None)
    except (OSError, ValueError) as exc:
        if "decrypt" in str(exc).lower():  # the column's metadata is encrypted
            return False
        raise FormatError(f"{path}: column {column} is not readable ({exc})") from None
    return True


def verify_dataset(source: Path, required: Sequence[str], crypto: ParquetCrypto | None = None,
                   max_findings: int = 1000) -> tuple[list[ColumnFinding], dict[str, Any]]:
    """Findings of a Parquet file or dataset folder: required (sensitive) columns stored in
    plaintext, card numbers and SSNs in the string values of the columns readable without a
    key, and, with crypto, every file read and authenticated with the keys. A file whose
    footer is encrypted cannot be inspected without a key: it needs crypto."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    source = Path(source)
    files = dataset_files(source)
    base = source.parent if source.is_file() else source
    findings: list[ColumnFinding] = []
    summary: dict[str, Any] = {"files": len(files), "rows": 0, "encrypted_columns": {},
                               "plaintext_footer": None}
    for rel in files:
        path = base / rel
        closed = encrypted_footer(path)
        summary["plaintext_footer"] = not closed
        if closed and crypto is None:
            raise ConfigurationError(
                f"{path}: the footer is encrypted, so the columns cannot be listed without "
                "the key: pass the keyring (--kms-key-id or --local-key)")
        try:
            schema = pq.read_schema(path, decryption_properties=(
                crypto.decryption_properties(path) if closed and crypto else None))
        except (OSError, ValueError) as exc:
            raise _decryption_error(path, exc) from None
        names = schema.names
        missing = [c for c in required if c.split(".")[0] not in names]
        for column in missing:
            findings.append(ColumnFinding(str(rel), column, "missing-column",
                                          detail="a required column is not in the file"))
        plain = (crypto.plaintext_columns(path, names) if closed and crypto
                 else [c for c in names if _probe(path, c)])
        encrypted = [c for c in names if c not in plain]
        summary["encrypted_columns"][str(rel)] = encrypted
        for column in required:
            if column.split(".")[0] in plain:
                findings.append(ColumnFinding(str(rel), column, "plaintext-column",
                                              detail="a sensitive column is stored in plaintext"))
        if crypto is not None:
            table = crypto.read_table(path)  # authenticates every encrypted page
        elif plain:
            table = _read_plain(path, plain)
        else:
            table = pa.table({})
        summary["rows"] += table.num_rows
        for finding in _scan_columns(table.select(plain) if plain else pa.table({})):
            if len(findings) < max_findings:
                findings.append(ColumnFinding(str(rel), finding.path, finding.kind,
                                              finding.masked))
    return findings, summary


def _read_plain(path: Path, columns: Sequence[str] | None = None) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=list(columns) if columns else None,
                             partitioning=None)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not readable as Parquet ({exc})") from None


def _scan_columns(table: Any) -> Iterator[Any]:
    """Card numbers and SSNs in every value of the table's columns, nested values and
    integers included (field_encryption.scan; a whole field ciphertext is passed over)."""
    from field_encryption import scan

    for batch in table.to_batches(max_chunksize=65_536):
        for row in batch.to_pylist():
            yield from scan.scan_record(row)


# -- fields mode: the library's per-field envelope in Parquet columns (Spark's output) ------
HEADER_COLUMN = "_fe"


def fields_mode(path: Path) -> bool:
    """Whether a Parquet file (or the first file of a folder) holds field-encrypted records
    (a `_fe` header column) rather than Parquet Modular Encryption."""
    import pyarrow.parquet as pq

    path = Path(path)
    first = path if path.is_file() else path / dataset_files(path)[0]
    if encrypted_footer(first):  # Parquet Modular Encryption with its footer encrypted
        return False
    try:
        return HEADER_COLUMN in pq.read_schema(first).names
    except (OSError, ValueError) as exc:
        raise FormatError(f"{first}: not readable as Parquet ({exc})") from None


def encrypted_footer(path: Path) -> bool:
    """Whether a Parquet file ends with PARE, the magic of an encrypted footer."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, 2)
            return fh.read(4) == b"PARE"
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def encrypt_fields_dataset(fe: Any, source: Path, destination: Path, columns: Sequence[str],
                           record_id_column: str | None = None) -> int:
    """Encrypt columns of a Parquet file or folder with the per-field envelope (the values
    field_encryption.spark writes); returns the number of rows."""
    import pyarrow.parquet as pq

    from field_encryption.arrow_fields import encrypt_batch, encrypted_schema
    from field_encryption.atomic import atomic_output

    def one(src: Path, dst: Path) -> int:
        if encrypted_footer(src):
            raise ConfigurationError(f"{src} is already encrypted (its footer is)")
        try:
            parquet = pq.ParquetFile(src)
        except (OSError, ValueError) as exc:
            raise FormatError(f"{src}: not readable as Parquet ({exc})") from None
        schema = encrypted_schema(parquet.schema_arrow, columns, fe.header_field)
        rows = 0
        with atomic_output(dst, binary=True) as handle, pq.ParquetWriter(handle,
                                                                          schema) as writer:
            for batch in parquet.iter_batches():
                writer.write_batch(encrypt_batch(fe, batch, columns, record_id_column))
                rows += batch.num_rows
        return rows

    return _transform_files(Path(source), Path(destination), one)


def decrypt_fields_dataset(fe: Any, source: Path, destination: Path,
                           record_id_column: str | None = None) -> int:
    """Decrypt a field-encrypted Parquet file or folder (every row authenticated); the
    plaintext columns take the types of the decrypted values."""
    import pyarrow.parquet as pq

    from field_encryption.arrow_fields import decrypt_batch, encrypted_columns
    from field_encryption.atomic import atomic_output

    def one(src: Path, dst: Path) -> int:
        table = _read_plain(src).combine_chunks()  # one batch: one type per column
        batches = table.to_batches()
        columns = encrypted_columns(batches[0], fe.header_field) if batches else []
        out = [decrypt_batch(fe, b, columns, record_id_column=record_id_column, infer=True)
               for b in batches]
        plain = pa_table(out, table)
        with atomic_output(dst, binary=True) as handle:
            pq.write_table(plain, handle)
        return table.num_rows

    return _transform_files(Path(source), Path(destination), one)


def pa_table(batches: list[Any], like: Any) -> Any:
    import pyarrow as pa

    if not batches:
        return like.drop_columns([HEADER_COLUMN]) if HEADER_COLUMN in like.column_names else like
    return pa.Table.from_batches(batches).combine_chunks()


def verify_fields_dataset(source: Path, required: Sequence[str], fe: Any = None,
                          max_findings: int = 1000,
                          record_id_column: str | None = None,
                          ) -> tuple[list[ColumnFinding], dict[str, Any]]:
    """Findings of a field-encrypted Parquet file or folder: a required column holding a
    value that is not a field ciphertext, card numbers and SSNs in the other string columns,
    and with fe every row authenticated and decrypted."""

    from field_encryption.arrow_fields import decrypt_batch, encrypted_columns
    from field_encryption.envelope import is_ciphertext

    source = Path(source)
    files = dataset_files(source)
    base = source.parent if source.is_file() else source
    findings: list[ColumnFinding] = []
    summary: dict[str, Any] = {"files": len(files), "rows": 0, "encrypted_columns": {},
                               "plaintext_footer": True, "mode": "fields"}

    def add(finding: ColumnFinding) -> None:
        if len(findings) < max_findings:
            findings.append(finding)

    for rel in files:
        table = _read_plain(base / rel)
        summary["rows"] += table.num_rows
        names = table.column_names
        batches = table.to_batches()
        encrypted = encrypted_columns(batches[0]) if batches else []
        summary["encrypted_columns"][str(rel)] = encrypted
        for column in required:
            if column not in names:
                add(ColumnFinding(str(rel), column, "missing-column",
                                  detail="a required column is not in the file"))
                continue
            for value in table.column(column).to_pylist():
                if value is not None and not is_ciphertext(value):
                    add(ColumnFinding(str(rel), column, "unencrypted-field",
                                      detail="a value of a sensitive column is not encrypted"))
        others = [c for c in names if c != HEADER_COLUMN]
        for finding in _scan_columns(table.select(others)):
            add(ColumnFinding(str(rel), finding.path, finding.kind, finding.masked))
        if fe is not None:
            for batch in batches:
                try:
                    decrypt_batch(fe, batch, encrypted, record_id_column=record_id_column,
                                  infer=True)
                except FieldEncryptionError as exc:
                    add(ColumnFinding(str(rel), HEADER_COLUMN, "decrypt-failed",
                                      detail=str(exc)))
                    break
    return findings, summary
