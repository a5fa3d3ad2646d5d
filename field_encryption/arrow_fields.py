"""The library's per-field envelope on Arrow record batches: the form Spark executors
(field_encryption.spark) and `field-encrypt` on Parquet in `fields` mode share.

A batch's selected columns become strings holding the field ciphertexts (`fe1:...`, as
FieldEncryption writes them in a JSON record), and a header column (`_fe`, the record's
header as compact JSON) is added: each row is a record as FieldEncryption.encrypt_fields makes
it, authenticated as a whole (header, field list, record id). Decrypting needs the same
namespace and, where the rows carry an id column, the same record id column.

One FieldEncryption (one data-key cache) serves every batch of a process: a data key is
generated once and reused within the cache's limits, so KMS sees a few calls per process,
not one per row.
"""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Mapping, Sequence
from typing import Any

from field_encryption.client import FieldEncryption
from field_encryption.errors import ConfigurationError, FormatError


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise ConfigurationError("Arrow batches need pyarrow>=16 (pip install "
                                 "'m7guard[parquet]')") from exc
    return pa


def _selected(batch: Any, columns: Sequence[str], record_id_column: str | None) -> list[str]:
    names = batch.schema.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ConfigurationError(f"columns {', '.join(map(repr, missing))} are not in the data "
                                 f"(columns: {', '.join(names)})")
    take = list(columns)
    if record_id_column:
        if record_id_column not in names:
            raise ConfigurationError(f"record id column {record_id_column!r} is not in the data")
        if record_id_column in columns:
            raise ConfigurationError(f"the record id column {record_id_column!r} cannot be "
                                     "encrypted: it names the record")
        take.append(record_id_column)
    return take


def encrypted_schema(schema: Any, columns: Sequence[str], header: str = "_fe") -> Any:
    """The Arrow schema of encrypted batches: the columns as strings, the header added."""
    pa = _pa()
    if header in schema.names:
        raise ConfigurationError(f"the data already has a {header!r} column (already "
                                 "encrypted?)")
    fields = [pa.field(f.name, pa.string()) if f.name in columns else f for f in schema]
    return pa.schema([*fields, pa.field(header, pa.string(), nullable=False)])


def _json_value(value: Any) -> Any:
    """Arrow values JSON has no type for, as text: a decimal exactly, a date or time in ISO
    8601 (decrypt_batch casts them back to the type asked for)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


def encrypt_batch(fe: FieldEncryption, batch: Any, columns: Sequence[str],
                  record_id_column: str | None = None) -> Any:
    """The batch with columns encrypted per row and the header column added."""
    pa = _pa()
    take = _selected(batch, columns, record_id_column)
    out: dict[str, list[Any]] = {c: [] for c in columns}
    headers: list[str] = []
    for row in batch.select(take).to_pylist():
        record_id = row.pop(record_id_column) if record_id_column else None
        row = {name: _json_value(value) for name, value in row.items()}
        done = fe.encrypt_fields(row, list(columns), record_id=record_id)
        for column in columns:
            out[column].append(done[column])
        headers.append(json.dumps(done[fe.header_field], separators=(",", ":"),
                                  sort_keys=True))
    schema = encrypted_schema(batch.schema, columns, fe.header_field)
    arrays = [pa.array(out[name], pa.string()) if name in out else batch.column(name)
              for name in batch.schema.names]
    arrays.append(pa.array(headers, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def decrypted_schema(schema: Any, columns: Sequence[str], types: Mapping[str, Any],
                     header: str = "_fe") -> Any:
    pa = _pa()
    if header not in schema.names:
        raise FormatError(f"no {header!r} header column: the data is not field-encrypted")
    return pa.schema([pa.field(f.name, types.get(f.name, pa.string())) if f.name in columns
                      else f for f in schema if f.name != header])


def encrypted_columns(batch: Any, header: str = "_fe") -> list[str]:
    """The columns the first row's header names (the columns of a field-encrypted batch)."""
    if header not in batch.schema.names or batch.num_rows == 0:
        return []
    text = batch.column(header)[0].as_py()
    try:
        paths = json.loads(text)["f"]
        return [json.loads(path)[0] for path in paths]
    except (ValueError, KeyError, TypeError, IndexError):
        raise FormatError(f"the {header!r} column holds a header that is not a record "
                          "header") from None


def decrypt_batch(fe: FieldEncryption, batch: Any, columns: Sequence[str],
                  types: Mapping[str, Any] | None = None,
                  record_id_column: str | None = None, infer: bool = False) -> Any:
    """The batch with columns decrypted (each row authenticated as a whole) and the header
    column removed. types: column -> Arrow type of the plaintext (default string; with
    infer, the type of the decrypted values)."""
    pa = _pa()
    types = dict(types or {})
    header = fe.header_field
    if header not in batch.schema.names:
        raise FormatError(f"no {header!r} header column: the data is not field-encrypted")
    take = [*_selected(batch, columns, record_id_column), header]
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for row in batch.select(take).to_pylist():
        record_id = row.pop(record_id_column) if record_id_column else None
        text = row[header]
        try:
            row[header] = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            raise FormatError(f"the {header!r} column holds a header that is not JSON") from None
        # the columns asked for: a row whose header does not list one of them (a value left
        # in plaintext, or a header taken from another row) fails instead of passing through
        done = fe.decrypt_fields(row, list(columns), record_id=record_id)
        for column in columns:
            out[column].append(done[column])
    if infer:
        arrays = {c: (_typed(pa, out[c], types[c]) if c in types else pa.array(out[c]))
                  for c in columns}
        types = {c: array.type for c, array in arrays.items()}
    schema = decrypted_schema(batch.schema, columns, types, header)
    arrays = [_typed(pa, out[f.name], f.type) if f.name in out else batch.column(f.name)
              for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _typed(pa: Any, values: list[Any], kind: Any) -> Any:
    """values as an array of kind: directly, or from their text (decimals, dates, times)."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string()).cast(kind)
