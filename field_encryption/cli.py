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

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from field_encryption import parquet_cli, paths, scan
from field_encryption.atomic import atomic_output
from field_encryption.cache import CacheLimits
from field_encryption.client import LEGACY_HEADER_VERSION, FieldEncryption
from field_encryption.errors import ConfigurationError, FieldEncryptionError, TamperError
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
            raise click.UsageError("give either a KMS key or --local-key, not both")
        if self.local_key:
            if self.dr_key_ids:
                raise click.UsageError("--kms-dr-key-id needs --kms-key-id")
            return KeyringSpec(local_key=self.local_key).build()
        if not self.kms_key_id:
            raise click.UsageError(f"a keyring is needed: pass {what}")
        return KeyringSpec(kms_key_id=self.kms_key_id, dr_key_ids=self.dr_key_ids,
                           region=self.region, profile=self.profile,
                           endpoint_url=self.endpoint_url).build()


def keyring_options(prefix: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for a keyring; ``prefix`` ("to-") names the destination of a rewrap."""
    dest = prefix.replace("-", "_")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                f"--{prefix}kms-key-id",
                f"{dest}kms_key_id",
                help="KMS key id, key ARN, alias name or alias ARN.",
            ),
            click.option(
                f"--{prefix}kms-dr-key-id",
                f"{dest}dr_key_ids",
                multiple=True,
                help="Another KMS key (e.g. another region) that also wraps each data key.",
            ),
            click.option(
                f"--{prefix}local-key",
                f"{dest}local_key",
                type=click.Path(dir_okay=False),
                help="Local key file (development and offline use only, not production).",
            ),
        ]
        if not prefix:
            options += [
                click.option("--region", help="AWS region (default: from the key ARN or profile)."),
                click.option("--profile", help="AWS shared-config profile."),
                click.option(
                    "--endpoint-url",
                    help="KMS endpoint URL (default: AWS_ENDPOINT_URL or the public endpoint).",
                ),
            ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


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
def io_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.argument("input_path", metavar="INPUT"),
            click.option(
                "-o",
                "--output",
                "output_path",
                help="Destination file ('-' for standard output).",
            ),
            click.option(
                "--in-place", is_flag=True, help="Replace INPUT (atomically) with the result."
            ),
            click.option(
                "--input-format",
                type=click.Choice(["jsonl", "csv", "parquet"]),
                help="Record format (default: from the file extension; a folder is a Parquet "
                "dataset).",
            ),
            click.option(
                "--namespace",
                "--table",
                "namespace",
                default="default",
                show_default=True,
                help="Table or namespace name bound into every ciphertext.",
            ),
            click.option(
                "--record-id-field",
                default="_id",
                show_default=True,
                help="Top-level field holding the record id ('' for none: random ids).",
            ),
            click.option(
                "--vault", "vault_path", help="Key vault file (deterministic/blind index)."
            ),
        ]
    ):
        func = option(func)
    return func


@contextlib.contextmanager
def _progress(source: RecordSource, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        yield lambda count: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

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
            raise click.UsageError("--in-place and --output exclude each other")
        if input_path == "-":
            raise click.UsageError("--in-place needs an input file, not standard input")
        return input_path
    if not output_path:
        raise click.UsageError("pass --output FILE (or '-'), or --in-place")
    if output_path != "-" and input_path != "-":
        with contextlib.suppress(OSError):
            if Path(output_path).resolve() == Path(input_path).resolve():
                raise click.UsageError("output is the input file: use --in-place instead")
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
            raise click.UsageError(f"field {path} given twice")
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
            raise click.UsageError(f"{path} is not selected: also pass --field {path}")
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
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv: debug).")
def cli(verbose: int) -> None:
    """Envelope encryption of record fields (AWS KMS or a local development key)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="field-encrypt: %(levelname)s: %(message)s")


@cli.command()
@io_options
@keyring_options()
@click.option("-f", "--field", "fields", multiple=True, help="Field path to encrypt (repeat).")
@click.option("--optional", multiple=True, help="Field path that may be absent (repeat).")
@click.option("--deterministic", multiple=True, help="Selected field to encrypt with AES-SIV.")
@click.option(
    "--blind-index",
    multiple=True,
    help="Selected field to blind-index, as PATH or PATH:text|digits|exact.",
)
@click.option(
    "--record-mac", is_flag=True, hidden=True, help="Accepted for old scripts: always on."
)
@click.option("--max-key-uses", type=int, default=2**24, show_default=True)
@click.option("--max-key-age", type=float, default=300.0, show_default=True, help="Seconds.")
@click.option("--plaintext-footer", is_flag=True,
              help="Parquet: leave the footer readable (signed), so the columns not selected "
              "read without a key. Default: the footer is encrypted too.")
@click.option("--parquet-mode", type=click.Choice(["pme", "fields"]), default="pme",
              show_default=True,
              help="Parquet: Parquet Modular Encryption of whole columns (pme), or the "
              "per-field envelope in each row, as field_encryption.spark writes (fields).")
@click.option("--external-key-material", is_flag=True,
              help="Parquet: keep the wrapped keys in a file beside each Parquet file, so "
              "`rewrap --in-place` can move them to a new or rotated KMS key.")
def encrypt(**kwargs: Any) -> int:
    """Encrypt the selected fields of every record in INPUT (JSON Lines, CSV), or the
    selected columns of a Parquet file or dataset folder."""
    keyring = _keyring_opts(kwargs).build()
    if parquet_cli.wanted(kwargs["input_path"], kwargs["input_format"]):
        return parquet_cli.encrypt(keyring, kwargs)
    if (kwargs["plaintext_footer"] or kwargs["external_key_material"]
            or kwargs["parquet_mode"] != "pme"):
        raise click.UsageError("--plaintext-footer, --external-key-material and --parquet-mode "
                               "are for Parquet")
    fmt = detect_format(kwargs["input_path"], kwargs["input_format"])
    specs = _specs(
        fmt, kwargs["fields"], kwargs["optional"], kwargs["deterministic"], kwargs["blind_index"]
    )
    if not specs:
        raise click.UsageError("select at least one --field or --optional")
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


@cli.command()
@io_options
@keyring_options()
@click.option("-f", "--field", "fields", multiple=True, help="Only decrypt these fields.")
@click.option("--require-mac", is_flag=True, hidden=True, help="Accepted for old scripts: always.")
@click.option(
    "--allow-legacy-v1",
    is_flag=True,
    help="Also read format-1 records, whose headers are not authenticated, and files "
    "without a trailer made only of them (reported on stderr). Unsafe: for migrating.",
)
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


@cli.command()
@io_options
@keyring_options()
@keyring_options("to-")
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


@cli.command()
@io_options
@keyring_options()
@keyring_options("to-")
@click.option("--to-vault", "to_vault_path", help="Key vault for the new encryption.")
@click.option(
    "--record-mac", is_flag=True, hidden=True, help="Accepted for old scripts: always on."
)
@click.option(
    "--allow-legacy-v1",
    is_flag=True,
    help="Also read format-1 records, whose headers are not authenticated, and files "
    "without a trailer made only of them (reported on stderr). Unsafe: for migrating.",
)
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


@cli.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--input-format", type=click.Choice(["jsonl", "csv", "parquet"]))
@click.option("-f", "--field", "fields", multiple=True, help="Field that must be encrypted.")
@click.option("--optional", multiple=True, help="Field that must be encrypted if present.")
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option("--max-findings", type=int, default=1000, show_default=True)
@click.option("--namespace", "--table", "namespace", default="default", show_default=True)
@click.option("--record-id-field", default="_id", show_default=True)
@click.option("--vault", "vault_path")
@click.option(
    "--allow-legacy-v1",
    is_flag=True,
    help="Also read format-1 records, whose headers are not authenticated, and files "
    "without a trailer made only of them (still reported as findings).",
)
@keyring_options()
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
        click.echo(json.dumps(report, indent=2))
    else:
        for f in findings:
            where = f"record {f['record']} (line {f['line']})"
            detail = f" {f['masked']}" if f["masked"] else ""
            detail += f": {f['detail']}" if f.get("detail") else ""
            click.echo(f"{where}: {f['kind']} at {f['path']}{detail}")
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no findings"
        click.echo(f"{records} records checked, file trailer {trailer_status}: {summary}")
    return EXIT_FINDINGS if counts else EXIT_OK


def _is_encrypted(value: Any) -> bool:
    from field_encryption.envelope import is_ciphertext

    return is_ciphertext(value)


@cli.command(context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
def spark(job_args: tuple[str, ...]) -> int:
    """Encrypt or decrypt columns of a Parquet dataset on Spark (the job of
    field_encryption.spark; `field-encrypt spark -h` lists its options). Under spark-submit
    run `python -m field_encryption.spark` instead."""
    from field_encryption.spark import run_job

    return run_job(list(job_args))


@cli.group()
def keys() -> None:
    """Create local key files and key vaults."""


@keys.command("local-new")
@click.argument("path")
@click.option("--name", default="dev", show_default=True)
def local_new(path: str, name: str) -> int:
    """Write a new local key file (mode 0600). Development and offline use only."""
    create_key_file(path, name)
    click.echo(f"wrote {path} (local key: development and offline use only, not production)")
    return EXIT_OK


@keys.command("vault-new")
@click.argument("path")
@keyring_options()
def vault_new(path: str, **kwargs: Any) -> int:
    """Create a key vault (deterministic and blind-index keys) wrapped by the keyring."""
    keyring = _keyring_opts(kwargs).build()
    if Path(path).exists():
        raise ConfigurationError(f"{path} already exists; choose another path")
    KeyVault.create(keyring).save(path)
    click.echo(f"wrote key vault {path}")
    return EXIT_OK


@keys.command("vault-rewrap")
@click.argument("path")
@keyring_options()
@keyring_options("to-")
def vault_rewrap(path: str, **kwargs: Any) -> int:
    """Re-wrap a key vault's keys under new KMS key(s) (in place, atomically)."""
    source = _keyring_opts(kwargs).build()
    target = _keyring_opts(kwargs, "to_").build("--to-kms-key-id or --to-local-key")
    KeyVault.load(path).rewrapped(target, source).save(path)
    click.echo(f"rewrapped key vault {path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps every error to exit code 1 (2 is reserved for findings)."""
    try:
        result = cli.main(args=argv, prog_name="field-encrypt", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("field-encrypt: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except FieldEncryptionError as exc:
        click.echo(f"field-encrypt: error: {exc}", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("field-encrypt: interrupted; destination left unchanged", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
