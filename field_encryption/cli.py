"""``field-encrypt``: encrypt, decrypt, rewrap, rekey and verify JSON Lines and CSV files,
and (encrypt, decrypt, rewrap, verify) Parquet files and dataset folders
(:mod:`field_encryption.parquet_cli`).

Output goes to a temporary file beside the destination and is renamed over it only when
complete, so an interrupted run never leaves a partial file in its place. Every file this
command writes with encrypted records ends with a signed trailer (see
:mod:`field_encryption.trailer`); reading commands require it and check it. Exit codes:
0 success (``verify``: clean), 2 ``verify`` findings, 1 usage or runtime error,
including a record or file that fails authentication.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from field_encryption import parquet_cli, paths, scan
from field_encryption.atomic import atomic_output
from field_encryption.cache import CacheLimits
from field_encryption.client import LEGACY_HEADER_VERSION, FieldEncryption
from field_encryption.errors import (
    ConfigurationError,
    FieldEncryptionError,
    TamperError,
    UsageError,
)
from field_encryption.keyrings import (
    Keyring,
    create_key_file,
)
from field_encryption.keyrings.spec import KeyringSpec
from field_encryption.paths import FieldSpec
from field_encryption.streams import (
    CsvWriter,
    Format,
    JsonlWriter,
    RecordSource,
    detect_format,
    open_source,
)
from field_encryption.trailer import FileDigest, check_digest, trailer_of
from field_encryption.vault import KeyVault

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_FINDINGS = 2
HEADER = "_fe"
INDEX = "_fe_bidx"
JSON_COLUMNS = (HEADER, INDEX)
TRAILER_PATH = "$trailer"

log = logging.getLogger("field_encryption")


# -- keyring options --------------------------------------------------------------------
@dataclass(frozen=True)
class KeyringOptions:
    kms_key_id: str | None
    dr_key_ids: tuple[str, ...]
    region: str | None
    profile: str | None
    endpoint_url: str | None
    local_key: str | None

    def configured(self) -> bool:
        return bool(self.kms_key_id or self.local_key)

    def build(self, what: str = "--kms-key-id or --local-key") -> Keyring:
        if self.kms_key_id and self.local_key:
            raise UsageError("give either a KMS key or --local-key, not both")
        if self.local_key:
            if self.dr_key_ids:
                raise UsageError("--kms-dr-key-id needs --kms-key-id")
            return KeyringSpec(local_key=self.local_key).build()
        if not self.kms_key_id:
            raise UsageError(f"a keyring is needed: pass {what}")
        return KeyringSpec(kms_key_id=self.kms_key_id, dr_key_ids=self.dr_key_ids,
                           region=self.region, profile=self.profile,
                           endpoint_url=self.endpoint_url).build()


@dataclass(frozen=True)
class Opt:
    """One option of a command: what argparse is told, and the key it fills in the command's
    keyword arguments (``dest``); a repeated option gives a tuple, as the commands expect."""

    flags: tuple[str, ...]
    dest: str
    help: str = ""
    multiple: bool = False
    flag: bool = False
    kind: Callable[[str], Any] = str
    default: Any = None
    choices: tuple[str, ...] | None = None
    hidden: bool = False
    show_default: bool = False
    metavar: str | None = None


def keyring_options(prefix: str = "") -> list[Opt]:
    """The options of a keyring; ``prefix`` ("to-") names the destination of a rewrap."""
    dest = prefix.replace("-", "_")
    options = [
        Opt((f"--{prefix}kms-key-id",), f"{dest}kms_key_id",
            "KMS key id, key ARN, alias name or alias ARN."),
        Opt((f"--{prefix}kms-dr-key-id",), f"{dest}dr_key_ids",
            "Another KMS key (e.g. another region) that also wraps each data key.",
            multiple=True),
        Opt((f"--{prefix}local-key",), f"{dest}local_key",
            "Local key file (development and offline use only, not production)."),
    ]
    if not prefix:
        options += [
            Opt(("--region",), "region", "AWS region (default: from the key ARN or profile)."),
            Opt(("--profile",), "profile", "AWS shared-config profile."),
            Opt(("--endpoint-url",), "endpoint_url",
                "KMS endpoint URL (default: AWS_ENDPOINT_URL or the public endpoint)."),
        ]
    return options


def _keyring_opts(kwargs: dict[str, Any], prefix: str = "") -> KeyringOptions:
    return KeyringOptions(
        kms_key_id=kwargs.pop(f"{prefix}kms_key_id"),
        dr_key_ids=tuple(kwargs.pop(f"{prefix}dr_key_ids")),
        region=kwargs.get("region"),
        profile=kwargs.get("profile"),
        endpoint_url=kwargs.get("endpoint_url"),
        local_key=kwargs.pop(f"{prefix}local_key"),
    )


# -- files and progress -----------------------------------------------------------------
INPUT = Opt(("input_path",), "input_path", "The input file (or '-'), or a Parquet dataset folder.",
            metavar="INPUT")
FORMATS = ("jsonl", "csv", "parquet")


def io_options() -> list[Opt]:
    return [
        INPUT,
        Opt(("-o", "--output"), "output_path", "Destination file ('-' for standard output)."),
        Opt(("--in-place",), "in_place", "Replace INPUT (atomically) with the result.", flag=True),
        Opt(("--input-format",), "input_format", "Record format (default: from the file "
            "extension; a folder is a Parquet dataset).", choices=FORMATS),
        Opt(("--namespace", "--table"), "namespace",
            "Table or namespace name bound into every ciphertext.", default="default",
            show_default=True),
        Opt(("--record-id-field",), "record_id_field",
            "Top-level field holding the record id ('' for none: random ids).", default="_id",
            show_default=True),
        Opt(("--vault",), "vault_path", "Key vault file (deterministic/blind index)."),
    ]


@contextlib.contextmanager
def _progress(source: RecordSource, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal and rich is installed (it is not a
    dependency of the field-encryption distribution); a no-op otherwise."""
    try:
        if not sys.stderr.isatty():
            raise ImportError("not a terminal")
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:
        yield lambda count: None
        return

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[records]} records"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(label, total=source.total, records=0)

        def update(count: int) -> None:
            progress.update(task, completed=source.position(), records=count)

        yield update
        update_final = source.total if source.total is not None else source.position()
        progress.update(task, completed=update_final)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so temporary files are cleaned up."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _destination(input_path: str, output_path: str | None, in_place: bool) -> str:
    if in_place:
        if output_path:
            raise UsageError("--in-place and --output exclude each other")
        if input_path == "-":
            raise UsageError("--in-place needs an input file, not standard input")
        return input_path
    if not output_path:
        raise UsageError("pass --output FILE (or '-'), or --in-place")
    if output_path != "-" and input_path != "-":
        with contextlib.suppress(OSError):
            if Path(output_path).resolve() == Path(input_path).resolve():
                raise UsageError("output is the input file: use --in-place instead")
    return output_path


@contextlib.contextmanager
def _sink(destination: str, mode_from: str | None) -> Iterator[IO[str]]:
    if destination == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    reference = Path(mode_from) if mode_from and mode_from != "-" else None
    with atomic_output(Path(destination), newline="", mode_from=reference) as handle:
        yield handle


def _specs(
    fmt: Format,
    fields: tuple[str, ...],
    optional: tuple[str, ...],
    deterministic: tuple[str, ...] = (),
    blind: tuple[str, ...] = (),
) -> list[FieldSpec]:
    """FieldSpecs from CLI paths; CSV column names are taken literally."""

    def norm(path: str) -> str:
        if fmt == "csv":
            return "[" + json.dumps(path, ensure_ascii=False) + "]"
        return path

    blind_map: dict[str, str] = {}
    for item in blind:
        path, _, normaliser = item.partition(":")
        blind_map[path] = normaliser or "text"
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for path, is_optional in [(p, False) for p in fields] + [(p, True) for p in optional]:
        if path in seen:
            raise UsageError(f"field {path} given twice")
        seen.add(path)
        specs.append(
            FieldSpec(
                norm(path),
                optional=is_optional,
                deterministic=path in deterministic,
                blind_index=blind_map.get(path),  # type: ignore[arg-type]
            )
        )
    for path in (*deterministic, *blind_map):
        if path not in seen:
            raise UsageError(f"{path} is not selected: also pass --field {path}")
    return specs


def _encryptor(
    keyring: Keyring,
    namespace: str,
    record_id_field: str,
    vault_path: str | None,
    cache_limits: CacheLimits | None = None,
    allow_legacy_v1: bool = False,
) -> FieldEncryption:
    vault = KeyVault.load(vault_path, keyring) if vault_path else None
    return FieldEncryption(
        keyring=keyring,
        namespace=namespace,
        record_id_field=record_id_field or None,
        allow_legacy_v1=allow_legacy_v1,
        vault=vault,
        cache_limits=cache_limits,
        header_field=HEADER,
        index_field=INDEX,
    )


def _legacy(record: dict[str, Any]) -> bool:
    header = record.get(HEADER)
    return type(header) is dict and header.get("v") == LEGACY_HEADER_VERSION


class _TrailerCheck:
    """Reading side of the file trailer: chains the input's records, finds the trailer,
    and checks it at the end (see :mod:`field_encryption.trailer`)."""

    def __init__(self, fe: FieldEncryption, input_path: str) -> None:
        self.fe = fe
        self.input_path = input_path
        self.chain = FileDigest()
        self.found: tuple[int, dict[str, Any]] | None = None
        self.legacy = 0

    def is_trailer(self, number: int, record: dict[str, Any]) -> bool:
        """True for the trailer record; raise on a record that follows it."""
        if self.found is not None:
            raise TamperError(
                f"{self.input_path} line {number}: a record after the file trailer (line "
                f"{self.found[0]}): files joined, or the trailer moved"
            )
        try:
            found = trailer_of(record, HEADER)
        except FieldEncryptionError as exc:
            raise type(exc)(f"{self.input_path} line {number}: {exc}") from None
        if found is None:
            return False
        self.found = (number, found)
        return True

    def add(self, record: dict[str, Any]) -> None:
        if _legacy(record):
            self.legacy += 1
        else:
            self.chain.add(record, HEADER)

    def finish(self) -> None:
        if self.found is None:
            if self.legacy and not self.chain.count and self.fe.allow_legacy_v1:
                log.warning(
                    "%s: %d legacy format-1 records and no file trailer, read because of "
                    "--allow-legacy-v1: neither the records' headers nor the file's "
                    "completeness are authenticated; re-encrypt it with rekey",
                    self.input_path,
                    self.legacy,
                )
                return
            raise TamperError(
                f"{self.input_path}: no file trailer after {self.chain.count + self.legacy} "
                "records: the file was truncated, or written before format 2 (read legacy "
                "files with --allow-legacy-v1)"
            )
        number, found = self.found
        if self.legacy:
            raise TamperError(
                f"{self.input_path}: {self.legacy} format-1 records in a file with a "
                "format-2 trailer (records spliced in)"
            )
        try:
            self.fe.check_file_trailer(found, self.chain)
        except FieldEncryptionError as exc:
            raise type(exc)(f"{self.input_path} line {number}: {exc}") from None


def _transform(
    input_path: str,
    destination: str,
    fmt: Format,
    label: str,
    transform: Callable[[dict[str, Any]], dict[str, Any]],
    columns: Callable[[list[str]], list[str]] | None = None,
    *,
    reader: FieldEncryption | None = None,
    sealer: FieldEncryption | None = None,
) -> int:
    """Stream INPUT through ``transform`` into DESTINATION atomically; return the count.

    ``reader``: the input is an encrypted file whose trailer is required and checked
    with this object's keyring. ``sealer``: the output gets a trailer keyed by it.
    """
    count = 0
    check = _TrailerCheck(reader, input_path) if reader is not None else None
    seal = FileDigest() if sealer is not None else None
    with (
        _sigterm_as_exit(),
        open_source(input_path, fmt, JSON_COLUMNS if fmt == "csv" else ()) as source,
        _sink(destination, input_path) as handle,
        _progress(source, label) as tick,
    ):
        if fmt == "csv":
            names = list(source.fieldnames or [])
            writer: JsonlWriter | CsvWriter = CsvWriter(
                handle, columns(names) if columns else names, JSON_COLUMNS
            )
        else:
            writer = JsonlWriter(handle)
        for number, record in source.records:
            if check is not None and check.is_trailer(number, record):
                continue
            try:
                result = transform(record)
                if check is not None:
                    check.add(record)
                if seal is not None:
                    seal.add(result, HEADER)
            except FieldEncryptionError as exc:
                raise type(exc)(f"{input_path} line {number}: {exc}") from None
            writer.write(result)
            count += 1
            if not count & 0x3FF:
                tick(count)
        if check is not None:
            check.finish()
        if sealer is not None and seal is not None:
            writer.write(sealer.file_trailer(seal))
        tick(count)
    return count


def _with_columns(*extra: str) -> Callable[[list[str]], list[str]]:
    return lambda names: names + [c for c in extra if c not in names]


def _without_columns(*drop: str) -> Callable[[list[str]], list[str]]:
    return lambda names: [n for n in names if n not in drop]


# -- commands ---------------------------------------------------------------------------
def encrypt(**kwargs: Any) -> int:
    """Encrypt the selected fields of every record in INPUT (JSON Lines, CSV), or the
    selected columns of a Parquet file or dataset folder."""
    keyring = _keyring_opts(kwargs).build()
    if parquet_cli.wanted(kwargs["input_path"], kwargs["input_format"]):
        return parquet_cli.encrypt(keyring, kwargs)
    if (kwargs["plaintext_footer"] or kwargs["external_key_material"]
            or kwargs["parquet_mode"] != "pme"):
        raise UsageError("--plaintext-footer, --external-key-material and --parquet-mode "
                               "are for Parquet")
    fmt = detect_format(kwargs["input_path"], kwargs["input_format"])
    specs = _specs(
        fmt, kwargs["fields"], kwargs["optional"], kwargs["deterministic"], kwargs["blind_index"]
    )
    if not specs:
        raise UsageError("select at least one --field or --optional")
    destination = _destination(kwargs["input_path"], kwargs["output_path"], kwargs["in_place"])
    limits = CacheLimits(max_age=kwargs["max_key_age"], max_uses=kwargs["max_key_uses"])
    fe = _encryptor(
        keyring, kwargs["namespace"], kwargs["record_id_field"], kwargs["vault_path"], limits
    )
    extra = (INDEX, HEADER) if kwargs["blind_index"] else (HEADER,)
    count = _transform(
        kwargs["input_path"],
        destination,
        fmt,
        "encrypt",
        lambda record: fe.encrypt_fields(record, specs),
        _with_columns(*extra),
        sealer=fe,
    )
    log.info("encrypted %d records", count)
    return EXIT_OK


def decrypt(**kwargs: Any) -> int:
    """Decrypt every encrypted field (or only --field ones) of every record in INPUT.

    Every record and the file's trailer are authenticated; a record that was changed,
    dropped, duplicated, moved or spliced in, or a truncated file, fails (exit 1) and
    the destination is left as it was.
    """
    keyring = _keyring_opts(kwargs).build()
    if parquet_cli.wanted(kwargs["input_path"], kwargs["input_format"]):
        return parquet_cli.decrypt(keyring, kwargs)
    fmt = detect_format(kwargs["input_path"], kwargs["input_format"])
    destination = _destination(kwargs["input_path"], kwargs["output_path"], kwargs["in_place"])
    fe = _encryptor(
        keyring,
        kwargs["namespace"],
        kwargs["record_id_field"],
        kwargs["vault_path"],
        allow_legacy_v1=kwargs["allow_legacy_v1"],
    )
    only = _specs(fmt, kwargs["fields"], ()) or None
    columns = _without_columns(INDEX, HEADER) if only is None else None
    count = _transform(
        kwargs["input_path"],
        destination,
        fmt,
        "decrypt",
        lambda record: fe.decrypt_fields(record, only),
        columns,
        reader=fe,
    )
    log.info("decrypted %d records", count)
    return EXIT_OK


def rewrap(**kwargs: Any) -> int:
    """Re-wrap each record's data key under new KMS key(s); fields stay as they are.

    Each record is authenticated first and its MAC renewed over the new wrapped keys;
    the file trailer is checked and written anew under the destination key.
    """
    source = _keyring_opts(kwargs).build()
    target = _keyring_opts(kwargs, "to_").build("--to-kms-key-id or --to-local-key")
    if parquet_cli.wanted(kwargs["input_path"], kwargs["input_format"]):
        return parquet_cli.rewrap(source, target, kwargs)
    fmt = detect_format(kwargs["input_path"], kwargs["input_format"])
    destination = _destination(kwargs["input_path"], kwargs["output_path"], kwargs["in_place"])
    fe = _encryptor(source, kwargs["namespace"], kwargs["record_id_field"], None)
    sealer = _encryptor(target, kwargs["namespace"], kwargs["record_id_field"], None)
    memo: dict[tuple[str, bytes], list[dict[str, str]]] = {}
    count = _transform(
        kwargs["input_path"],
        destination,
        fmt,
        "rewrap",
        lambda record: fe.rewrap(record, target, memo),
        reader=fe,
        sealer=sealer,
    )
    log.info("rewrapped %d records (%d data keys)", count, len(memo))
    return EXIT_OK


def rekey(**kwargs: Any) -> int:
    """Decrypt and re-encrypt every record's fields under new data keys.

    With --to-kms-key-id/--to-local-key the new data keys come from that keyring.
    """
    source = _keyring_opts(kwargs).build()
    to_opts = _keyring_opts(kwargs, "to_")
    target_keyring = to_opts.build() if to_opts.configured() else source
    fmt = detect_format(kwargs["input_path"], kwargs["input_format"])
    destination = _destination(kwargs["input_path"], kwargs["output_path"], kwargs["in_place"])
    old = _encryptor(
        source,
        kwargs["namespace"],
        kwargs["record_id_field"],
        kwargs["vault_path"],
        allow_legacy_v1=kwargs["allow_legacy_v1"],
    )
    new = _encryptor(
        target_keyring,
        kwargs["namespace"],
        kwargs["record_id_field"],
        kwargs["to_vault_path"] or kwargs["vault_path"],
    )
    count = _transform(
        kwargs["input_path"],
        destination,
        fmt,
        "rekey",
        lambda record: old.rekey(record, new),
        reader=old,
        sealer=new,
    )
    log.info("re-encrypted %d records", count)
    return EXIT_OK


def verify(**kwargs: Any) -> int:
    """Check that the selected fields are encrypted, no plaintext PAN or SSN remains, and
    the file is whole.

    Scans every value of every record for Luhn-valid card numbers (13-19 digits) and
    US SSNs. A file with encrypted records must end with its trailer, whose record count
    and chain of record MACs must match the records (truncated, dropped, duplicated,
    moved or spliced records are findings). With a keyring it also authenticates and
    decrypts each record and checks the trailer's tag. Legacy format-1 records are
    findings. Findings show only the last four digits. Exit 0 clean, 2 findings, 1 error.
    """
    opts = _keyring_opts(kwargs)
    input_path = kwargs["input_path"]
    if parquet_cli.wanted(input_path, kwargs["input_format"]):
        return parquet_cli.verify(opts.build() if opts.configured() else None, kwargs)
    fmt = detect_format(input_path, kwargs["input_format"])
    specs = _specs(fmt, kwargs["fields"], kwargs["optional"])
    fe = None
    if opts.configured():
        fe = _encryptor(
            opts.build(),
            kwargs["namespace"],
            kwargs["record_id_field"],
            kwargs["vault_path"],
            allow_legacy_v1=kwargs["allow_legacy_v1"],
        )
    limit = max(kwargs["max_findings"], 0)
    findings: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    records = 0
    encrypted = 0
    chain = FileDigest()
    found: tuple[int, dict[str, Any]] | None = None
    trailer_status = "none"

    def add(number: int, index: int, kind: str, path: str, masked: str, detail: str = "") -> None:
        counts[kind] = counts.get(kind, 0) + 1
        if len(findings) < limit:
            finding = {"record": index, "line": number, "kind": kind, "path": path}
            finding["masked"] = masked
            if detail:
                finding["detail"] = detail
            findings.append(finding)

    with (
        open_source(input_path, fmt, JSON_COLUMNS if fmt == "csv" else ()) as source,
        _progress(source, "verify") as tick,
    ):
        number = 0
        for number, record in source.records:
            if found is not None:
                add(number, records + 1, "after-trailer", "$", "", f"trailer at line {found[0]}")
            try:
                trailer = trailer_of(record, HEADER)
            except FieldEncryptionError as exc:
                add(number, records, "trailer-invalid", TRAILER_PATH, "", str(exc))
                continue
            if trailer is not None and found is None:
                found = (number, trailer)
                continue
            records += 1
            for spec in specs:
                matches = paths.expand(record, spec.steps)
                if not matches and not spec.optional:
                    add(number, records, "missing-field", spec.path, "")
                for steps in matches:
                    value = paths.get(record, steps)
                    if not _is_encrypted(value):
                        add(number, records, "unencrypted-field", paths.display(steps), "")
            for finding in scan.scan_record(record):
                add(number, records, finding.kind, finding.path, finding.masked)
            header = record.get(HEADER)
            if type(header) is dict:
                if _legacy(record):
                    add(number, records, "legacy-v1-record", HEADER, "")
                else:
                    encrypted += 1
                    try:
                        chain.add(record, HEADER)
                    except FieldEncryptionError as exc:
                        add(number, records, "record-mac-missing", HEADER, "", str(exc))
            if fe is not None and HEADER in record:
                try:
                    fe.decrypt_fields(record)
                except FieldEncryptionError as exc:
                    add(number, records, "decrypt-failed", type(exc).__name__, "", str(exc))
            if not records & 0x3FF:
                tick(records)
        tick(records)
    if found is None:
        if encrypted:
            trailer_status = "missing"
            add(
                number,
                records,
                "trailer-missing",
                TRAILER_PATH,
                "",
                f"no file trailer after {records} records: truncated, or not written by "
                "field-encrypt 2",
            )
    else:
        line, trailer = found
        try:
            if fe is not None:
                fe.check_file_trailer(trailer, chain)
                trailer_status = "verified"
            else:
                check_digest(trailer, chain.count, chain.digest())
                trailer_status = "count and chain match (tag not checked: no keyring)"
        except FieldEncryptionError as exc:
            trailer_status = "invalid"
            add(line, records, "trailer-invalid", TRAILER_PATH, "", str(exc))
    status = "findings" if counts else "clean"
    if kwargs["report_format"] == "json":
        report = {
            "tool": "field-encrypt verify",
            "report_version": 2,
            "input": input_path,
            "records": records,
            "fields": [s.path for s in specs],
            "status": status,
            "trailer": trailer_status,
            "counts": counts,
            "findings": findings,
            "truncated": sum(counts.values()) > len(findings),
        }
        _echo(json.dumps(report, indent=2))
    else:
        for f in findings:
            where = f"record {f['record']} (line {f['line']})"
            detail = f" {f['masked']}" if f["masked"] else ""
            detail += f": {f['detail']}" if f.get("detail") else ""
            _echo(f"{where}: {f['kind']} at {f['path']}{detail}")
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no findings"
        _echo(f"{records} records checked, file trailer {trailer_status}: {summary}")
    return EXIT_FINDINGS if counts else EXIT_OK


def _is_encrypted(value: Any) -> bool:
    from field_encryption.envelope import is_ciphertext

    return is_ciphertext(value)


def spark(job_args: list[str]) -> int:
    """Encrypt or decrypt columns of a Parquet dataset on Spark (the job of
    field_encryption.spark; `field-encrypt spark -h` lists its options). Under spark-submit
    run `python -m field_encryption.spark` instead."""
    from field_encryption.spark import run_job

    return run_job(job_args)


def local_new(path: str, name: str) -> int:
    """Write a new local key file (mode 0600). Development and offline use only."""
    create_key_file(path, name)
    _echo(f"wrote {path} (local key: development and offline use only, not production)")
    return EXIT_OK


def vault_new(path: str, **kwargs: Any) -> int:
    """Create a key vault (deterministic and blind-index keys) wrapped by the keyring."""
    keyring = _keyring_opts(kwargs).build()
    if Path(path).exists():
        raise ConfigurationError(f"{path} already exists; choose another path")
    KeyVault.create(keyring).save(path)
    _echo(f"wrote key vault {path}")
    return EXIT_OK


def vault_rewrap(path: str, **kwargs: Any) -> int:
    """Re-wrap a key vault's keys under new KMS key(s) (in place, atomically)."""
    source = _keyring_opts(kwargs).build()
    target = _keyring_opts(kwargs, "to_").build("--to-kms-key-id or --to-local-key")
    KeyVault.load(path).rewrapped(target, source).save(path)
    _echo(f"rewrapped key vault {path}")
    return EXIT_OK


# -- the command line -----------------------------------------------------------------
def _echo(text: str, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


FIELDS_HELP = "Field path to encrypt (repeat)."
LEGACY_HELP = ("Also read format-1 records, whose headers are not authenticated, and files "
               "without a trailer made only of them (reported on stderr). Unsafe: for migrating.")
OLD_FLAG = "Accepted for old scripts: always on."

ENCRYPT = [
    *io_options(), *keyring_options(),
    Opt(("-f", "--field"), "fields", FIELDS_HELP, multiple=True),
    Opt(("--optional",), "optional", "Field path that may be absent (repeat).", multiple=True),
    Opt(("--deterministic",), "deterministic", "Selected field to encrypt with AES-SIV.",
        multiple=True),
    Opt(("--blind-index",), "blind_index",
        "Selected field to blind-index, as PATH or PATH:text|digits|exact.", multiple=True),
    Opt(("--record-mac",), "record_mac", OLD_FLAG, flag=True, hidden=True),
    Opt(("--max-key-uses",), "max_key_uses", "Records per data key.", kind=int,
        default=2**24, show_default=True),
    Opt(("--max-key-age",), "max_key_age", "Seconds a data key is used.", kind=float,
        default=300.0, show_default=True),
    Opt(("--plaintext-footer",), "plaintext_footer",
        "Parquet: leave the footer readable (signed), so the columns not selected read without "
        "a key. Default: the footer is encrypted too.", flag=True),
    Opt(("--parquet-mode",), "parquet_mode",
        "Parquet: Parquet Modular Encryption of whole columns (pme), or the per-field envelope "
        "in each row, as field_encryption.spark writes (fields).", choices=("pme", "fields"),
        default="pme", show_default=True),
    Opt(("--external-key-material",), "external_key_material",
        "Parquet: keep the wrapped keys in a file beside each Parquet file, so `rewrap "
        "--in-place` can move them to a new or rotated KMS key.", flag=True),
]
DECRYPT = [
    *io_options(), *keyring_options(),
    Opt(("-f", "--field"), "fields", "Only decrypt these fields.", multiple=True),
    Opt(("--require-mac",), "require_mac", OLD_FLAG, flag=True, hidden=True),
    Opt(("--allow-legacy-v1",), "allow_legacy_v1", LEGACY_HELP, flag=True),
]
REWRAP = [*io_options(), *keyring_options(), *keyring_options("to-")]
REKEY = [
    *io_options(), *keyring_options(), *keyring_options("to-"),
    Opt(("--to-vault",), "to_vault_path", "Key vault for the new encryption."),
    Opt(("--record-mac",), "record_mac", OLD_FLAG, flag=True, hidden=True),
    Opt(("--allow-legacy-v1",), "allow_legacy_v1", LEGACY_HELP, flag=True),
]
VERIFY = [
    INPUT,
    Opt(("--input-format",), "input_format", "Record format (default: from the file "
        "extension; a folder is a Parquet dataset).", choices=FORMATS),
    Opt(("-f", "--field"), "fields", "Field that must be encrypted.", multiple=True),
    Opt(("--optional",), "optional", "Field that must be encrypted if present.",
        multiple=True),
    Opt(("--format",), "report_format", "Report format.", choices=("text", "json"),
        default="text", show_default=True),
    Opt(("--max-findings",), "max_findings", "Findings listed at most.", kind=int,
        default=1000, show_default=True),
    Opt(("--namespace", "--table"), "namespace", "Table or namespace name.",
        default="default", show_default=True),
    Opt(("--record-id-field",), "record_id_field", "Top-level field holding the record id.",
        default="_id", show_default=True),
    Opt(("--vault",), "vault_path", "Key vault file."),
    Opt(("--allow-legacy-v1",), "allow_legacy_v1",
        "Also read format-1 records, whose headers are not authenticated, and files without a "
        "trailer made only of them (still reported as findings).", flag=True),
    *keyring_options(),
]
PATH = Opt(("path",), "path", "The file.", metavar="PATH")
COMMANDS: dict[str, tuple[Callable[..., int], list[Opt]]] = {
    "encrypt": (encrypt, ENCRYPT),
    "decrypt": (decrypt, DECRYPT),
    "rewrap": (rewrap, REWRAP),
    "rekey": (rekey, REKEY),
    "verify": (verify, VERIFY),
}
KEYS: dict[str, tuple[Callable[..., int], list[Opt]]] = {
    "local-new": (local_new, [PATH, Opt(("--name",), "name", "Key name.", default="dev",
                                        show_default=True)]),
    "vault-new": (vault_new, [PATH, *keyring_options()]),
    "vault-rewrap": (vault_rewrap, [PATH, *keyring_options(), *keyring_options("to-")]),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line raised as UsageError (exit 1, as every error) and
    no abbreviated options (`--to` is not taken for `--to-kms-key-id`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} -h)")


def _add(parser: argparse.ArgumentParser, options: list[Opt]) -> None:
    for opt in options:
        text = opt.help + (f" (default: {opt.default})" if opt.show_default else "")
        shown = argparse.SUPPRESS if opt.hidden else text
        if not opt.flags[0].startswith("-"):
            parser.add_argument(opt.dest, metavar=opt.metavar, help=shown)
        elif opt.flag:
            parser.add_argument(*opt.flags, dest=opt.dest, action="store_true", help=shown)
        elif opt.multiple:
            parser.add_argument(*opt.flags, dest=opt.dest, action="append", help=shown,
                                metavar=_metavar(opt))
        else:
            parser.add_argument(*opt.flags, dest=opt.dest, type=opt.kind, default=opt.default,
                                choices=opt.choices, help=shown, metavar=_metavar(opt))


def _metavar(opt: Opt) -> str | None:
    if opt.metavar or opt.choices:
        return opt.metavar
    long = next((f for f in opt.flags if f.startswith("--")), opt.flags[0])
    return long.lstrip("-").upper().replace("-", "_")


def _first_line(func: Callable[..., Any]) -> str:
    return (func.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="field-encrypt", description="Envelope encryption of record fields "
                  "(AWS KMS or a local development key).")
    top.add_argument("-v", "--verbose", action="count", default=0,
                     help="More log output on stderr (-vv: debug).")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (func, options) in COMMANDS.items():
        sub = commands.add_parser(name, help=_first_line(func), description=func.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _add(sub, options)
        sub.set_defaults(func=func, options=options)
    commands.add_parser("spark", help=_first_line(spark), add_help=False)
    keys = commands.add_parser("keys", help="Create local key files and key vaults.")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    for name, (func, options) in KEYS.items():
        sub = actions.add_parser(name, help=_first_line(func), description=func.__doc__)
        _add(sub, options)
        sub.set_defaults(func=func, options=options)
    return top


def _run(argv: list[str]) -> int:
    # the spark job parses its own options (-h included): hand it everything after `spark`
    head = 0
    while head < len(argv) and (argv[head] == "--verbose" or re.fullmatch(r"-v+", argv[head])):
        head += 1
    verbose = sum(1 if a == "--verbose" else len(a) - 1 for a in argv[:head])
    if head < len(argv) and argv[head] == "spark":
        _logging(verbose)
        return spark(argv[head + 1:])
    args = parser().parse_args(argv)
    _logging(args.verbose)
    if getattr(args, "func", None) is None:
        raise UsageError("name a command (see field-encrypt -h)")
    kwargs = {opt.dest: getattr(args, opt.dest) for opt in args.options}
    for opt in args.options:
        if opt.multiple:
            kwargs[opt.dest] = tuple(kwargs[opt.dest] or ())
    return int(args.func(**kwargs))


def _logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="field-encrypt: %(levelname)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps every error to exit code 1 (2 is reserved for findings)."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # -h/--help, or the spark job's own exit
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except UsageError as exc:
        _echo(f"field-encrypt: usage: {exc}", err=True)
        return EXIT_ERROR
    except FieldEncryptionError as exc:
        _echo(f"field-encrypt: error: {exc}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _echo("field-encrypt: interrupted; destination left unchanged", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
