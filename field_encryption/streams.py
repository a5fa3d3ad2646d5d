"""Streaming readers and writers for JSON Lines and CSV records (constant memory).

CSV cells are strings; the record header and blind indexes travel as JSON text in
their own columns (``_fe``, ``_fe_bidx``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from field_encryption.errors import ConfigurationError, FormatError

Format = Literal["jsonl", "csv"]


def detect_format(path: str, explicit: str | None) -> Format:
    if explicit in ("jsonl", "csv"):
        return explicit  # type: ignore[return-value]
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise ConfigurationError(
        f"cannot tell the format of {path!r} from its name; pass --input-format jsonl or csv"
    )


@dataclass
class RecordSource:
    """Iterates (line number, record); ``position()`` reports bytes consumed so far."""

    records: Iterator[tuple[int, dict[str, Any]]]
    position: Callable[[], int]
    total: int | None
    fieldnames: list[str] | None = None
    json_columns: tuple[str, ...] = field(default=())


@contextlib.contextmanager
def open_source(
    path: str, fmt: Format, json_columns: tuple[str, ...] = ()
) -> Iterator[RecordSource]:
    if path == "-":
        binary: IO[bytes] = sys.stdin.buffer
        total = None
        owned = False
    else:
        try:
            binary = open(path, "rb", buffering=1 << 20)  # noqa: SIM115
        except OSError as exc:
            raise ConfigurationError(f"cannot open input {path}: {exc.strerror}") from None
        owned = True
        total = Path(path).stat().st_size
    try:
        if fmt == "jsonl":
            yield _jsonl_source(binary, total)
        else:
            yield _csv_source(binary, total, json_columns)
    finally:
        if owned:
            binary.close()


def _jsonl_source(binary: IO[bytes], total: int | None) -> RecordSource:
    consumed = [0]
    loads = json.loads

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in enumerate(binary, 1):
            consumed[0] += len(line)
            if not line.strip():
                continue
            try:
                record = loads(line)
            except ValueError:
                raise FormatError(f"line {number}: not valid JSON") from None
            if type(record) is not dict:
                raise FormatError(f"line {number}: a JSON Lines record must be an object")
            yield number, record

    return RecordSource(records(), lambda: consumed[0], total)


def _csv_source(
    binary: IO[bytes], total: int | None, json_columns: tuple[str, ...]
) -> RecordSource:
    import io

    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    reader = csv.DictReader(text)
    fieldnames = list(reader.fieldnames or [])
    if len(set(fieldnames)) != len(fieldnames):
        raise FormatError("CSV header names a column twice")

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for row in reader:
            number = reader.line_num
            if None in row:
                raise FormatError(f"line {number}: more cells than header columns")
            for column in json_columns:
                cell = row.get(column)
                if cell:
                    try:
                        row[column] = json.loads(cell)
                    except ValueError:
                        raise FormatError(f"line {number}: column {column} is not JSON") from None
                elif column in row:
                    del row[column]
            yield number, row

    def position() -> int:
        try:
            return binary.tell()
        except (OSError, ValueError):
            return 0

    return RecordSource(records(), position, total, fieldnames, json_columns)


class JsonlWriter:
    def __init__(self, handle: IO[str]) -> None:
        self._write = handle.write
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write(self, record: dict[str, Any]) -> None:
        self._write(self._dumps(record) + "\n")


class CsvWriter:
    def __init__(
        self, handle: IO[str], fieldnames: list[str], json_columns: tuple[str, ...]
    ) -> None:
        self._writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="raise")
        self._writer.writeheader()
        self._json_columns = json_columns
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write(self, record: dict[str, Any]) -> None:
        row = dict(record)
        for column in self._json_columns:
            if column in row and not isinstance(row[column], str):
                row[column] = self._dumps(row[column])
        for key, value in row.items():
            if isinstance(value, bytes):
                raise FormatError(f"column {key}: binary values cannot be written to CSV")
        try:
            self._writer.writerow(row)
        except ValueError as exc:
            raise FormatError(f"record has columns the CSV header lacks: {exc}") from None
