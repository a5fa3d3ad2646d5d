"""Field encryption on Spark: encrypt and decrypt chosen columns of a DataFrame on the
executors.

    from field_encryption.spark import KeyringSpec, encrypt_columns, decrypt_columns

    keyring = KeyringSpec(kms_key_id="alias/m7guard-field-encryption", region="us-east-1")
    encrypted = encrypt_columns(df, ["pan", "ssn"], keyring, namespace="transactions",
                                record_id_column="txn_id")
    encrypted.write.parquet("s3a://bucket/transactions-encrypted/")
    plain = decrypt_columns(spark.read.parquet(...), ["pan", "ssn"], keyring,
                            namespace="transactions", record_id_column="txn_id")

The work runs in `mapInArrow` on Arrow batches (field_encryption.arrow_fields): each executor
process builds one keyring and one FieldEncryption (one data-key cache) from the
KeyringSpec, the first time a task needs it, and reuses them for every later batch and task
of that process; KMS is asked for a data key a few times per executor, never per row. The
values are the library's: what `encrypt_columns` writes, FieldEncryption and
`field-encrypt decrypt` read (Parquet in `fields` mode), and the reverse.

Credentials: the executors use the AWS default chain (the instance profile or the pod's
role on a cluster); KeyringSpec carries no secret. A local key file (development only) must
be at the same path on every executor.

`python -m field_encryption.spark encrypt|decrypt ...` (or `field-encrypt spark ...`) is a
job for spark-submit: it reads a Parquet dataset, transforms the columns and writes Parquet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from field_encryption.arrow_fields import (
    decrypt_batch,
    decrypted_schema,
    encrypt_batch,
    encrypted_schema,
)
from field_encryption.cache import CacheLimits
from field_encryption.client import FieldEncryption
from field_encryption.errors import ConfigurationError
from field_encryption.keyrings.spec import KeyringSpec


@dataclass(frozen=True)
class _Config:
    keyring: KeyringSpec
    namespace: str
    max_key_uses: int
    max_key_age: float


_PER_PROCESS: dict[_Config, FieldEncryption] = {}
_LOCK = threading.Lock()


def encryptor(config: _Config) -> FieldEncryption:
    """This process's FieldEncryption for config (built once, then reused)."""
    with _LOCK:
        found = _PER_PROCESS.get(config)
        if found is None:
            found = FieldEncryption(
                keyring=config.keyring.build(), namespace=config.namespace,
                record_id_field=None,
                cache_limits=CacheLimits(max_age=config.max_key_age,
                                         max_uses=config.max_key_uses))
            _PER_PROCESS[config] = found
        return found


def _spark_schema(arrow_schema: Any) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)


def _arrow_schema(df: Any) -> Any:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def encrypt_columns(df: Any, columns: Sequence[str], keyring: KeyringSpec, *,
                    namespace: str = "default", record_id_column: str | None = None,
                    max_key_uses: int = 2**24, max_key_age: float = 300.0) -> Any:
    """df with columns encrypted per row (strings) and a `_fe` header column, computed on
    the executors."""
    columns = list(columns)
    if not columns:
        raise ConfigurationError("encrypt_columns: name at least one column")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigurationError(f"encrypt_columns: no column {', '.join(map(repr, missing))} "
                                 f"(columns: {', '.join(df.columns)})")
    config = _Config(keyring, namespace, max_key_uses, max_key_age)
    schema = encrypted_schema(_arrow_schema(df), columns)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        fe = encryptor(config)
        for batch in batches:
            yield encrypt_batch(fe, batch, columns, record_id_column)

    return df.mapInArrow(run, _spark_schema(schema))


def decrypt_columns(df: Any, columns: Sequence[str], keyring: KeyringSpec, *,
                    namespace: str = "default", record_id_column: str | None = None,
                    types: Mapping[str, str] | None = None) -> Any:
    """df with columns decrypted (each row authenticated) and the `_fe` column removed.
    types: column -> Spark SQL type of the plaintext (`bigint`, `double`, ...; default
    string)."""
    from pyspark.sql.pandas.types import to_arrow_type
    from pyspark.sql.types import _parse_datatype_string

    columns = list(columns)
    arrow_types = {name: to_arrow_type(_parse_datatype_string(ddl))
                   for name, ddl in (types or {}).items()}
    unknown = sorted(set(arrow_types) - set(columns))
    if unknown:
        raise ConfigurationError(f"decrypt_columns: types for columns not decrypted: {unknown}")
    config = _Config(keyring, namespace, 2**24, 300.0)
    schema = decrypted_schema(_arrow_schema(df), columns, arrow_types)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        fe = encryptor(config)
        for batch in batches:
            yield decrypt_batch(fe, batch, columns, arrow_types, record_id_column)

    return df.mapInArrow(run, _spark_schema(schema))


# -- the spark-submit job ------------------------------------------------------------------
def run_job(argv: Sequence[str] | None = None) -> int:
    """`python -m field_encryption.spark encrypt|decrypt INPUT OUTPUT --column C ...`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="field_encryption.spark",
        description="Encrypt or decrypt columns of a Parquet dataset on Spark.")
    parser.add_argument("action", choices=["encrypt", "decrypt"])
    parser.add_argument("input", help="Parquet dataset (file or folder; any Hadoop path)")
    parser.add_argument("output", help="Parquet output folder (must not exist)")
    parser.add_argument("-c", "--column", action="append", required=True,
                        help="column to encrypt or decrypt (repeat)")
    parser.add_argument("--kms-key-id")
    parser.add_argument("--kms-dr-key-id", action="append", default=[])
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--local-key", help="development only: the same path on every executor")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--record-id-column")
    parser.add_argument("--type", action="append", default=[], metavar="COLUMN=TYPE",
                        help="decrypt: the Spark SQL type of a column's plaintext")
    parser.add_argument("--master", help="Spark master (default: spark-submit's)")
    parser.add_argument("--partitions", type=int, help="repartition the input first")
    args = parser.parse_args(argv)
    spec = KeyringSpec(kms_key_id=args.kms_key_id, dr_key_ids=tuple(args.kms_dr_key_id),
                       region=args.region, profile=args.profile,
                       endpoint_url=args.endpoint_url, local_key=args.local_key)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(f"field-encryption {args.action}")
    if args.master:
        builder = builder.master(args.master)
        if args.master.startswith("local"):  # one machine: the driver listens on loopback
            builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.driver.host", "127.0.0.1"))
    spark = builder.getOrCreate()
    try:
        df = spark.read.parquet(args.input)
        if args.partitions:
            df = df.repartition(args.partitions)
        if args.action == "encrypt":
            out = encrypt_columns(df, args.column, spec, namespace=args.namespace,
                                  record_id_column=args.record_id_column)
        else:
            types = dict(item.split("=", 1) for item in args.type)
            out = decrypt_columns(df, args.column, spec, namespace=args.namespace,
                                  record_id_column=args.record_id_column, types=types)
        out.write.mode("errorifexists").parquet(args.output)
    finally:
        spark.stop()
    return 0


def describe(spec: KeyringSpec) -> dict[str, Any]:
    """What a log may say of a KeyringSpec (it holds no secret)."""
    return {k: v for k, v in asdict(spec).items() if v}


if __name__ == "__main__":
    # run the job from the imported module, not from __main__: Spark pickles the executors'
    # functions by reference to field_encryption.spark (executors import it too)
    from field_encryption.spark import run_job as _run_job

    raise SystemExit(_run_job())
