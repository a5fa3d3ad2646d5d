"""Field encryption on Spark in local mode (pyspark from PyPI, Java 17), against a moto KMS
server on 127.0.0.1 that the executors' Python workers reach over HTTP: Spark's output
decrypts with the CLI, the CLI's with Spark, a changed value or a wrong key fails, KMS is
asked a few times per executor process, not per row, and the spark-submit job runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from columnarkit import KmsRequests, counting_kms_requests
from moto_deployments import AWS_ENV

from field_encryption.cli import main
from field_encryption.spark import KeyringSpec, decrypt_columns, encrypt_columns

ROWS = 40_000


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    # the Python the executors' workers run: this one (with pyarrow and the library)
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = (SparkSession.builder.master("local[2]").appName("m7guard-field-encryption-test")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1"))
    for key, value in AWS_ENV.items():  # the executors' Python workers: no real AWS
        builder = builder.config(f"spark.executorEnv.{key}", value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = saved


@pytest.fixture
def kms_requests() -> Iterator[KmsRequests]:
    with counting_kms_requests() as handler:
        yield handler


def _plain_dataset(folder: Path) -> pa.Table:
    ids = list(range(ROWS))
    table = pa.table({
        "txn_id": pa.array(ids, pa.int64()),
        "pan": [f"4111{i:012d}" for i in ids],
        "ssn": [f"078-05-{i % 10000:04d}" for i in ids],
        "amount": pa.array([i / 100 for i in ids], pa.float64()),
        "region": ["eu" if i % 3 else "us" for i in ids],
    })
    pq.write_to_dataset(table, folder, partition_cols=["region"])
    return table


def _read(folder: Path) -> pa.Table:
    return ds.dataset(folder, partitioning="hive").to_table().sort_by("txn_id")


def test_spark_output_decrypts_with_the_cli(spark, tmp_path: Path, moto_endpoint: str,
                                            new_kms_key, kms_requests) -> None:
    arn = new_kms_key()
    plain = tmp_path / "plain"
    _plain_dataset(plain)
    spec = KeyringSpec(kms_key_id=arn, region="us-east-1", endpoint_url=moto_endpoint)
    df = spark.read.parquet(str(plain)).repartition(4)
    before = kms_requests.count
    out = encrypt_columns(df, ["pan", "ssn"], spec, namespace="txn",
                          record_id_column="txn_id")
    out.write.parquet(str(tmp_path / "enc"))
    calls = kms_requests.count - before

    table = pq.read_table(tmp_path / "enc")
    assert table.num_rows == ROWS
    assert all(v.startswith("fe1:") for v in table.column("pan").to_pylist())
    data_keys = {json.loads(h)["k"] for h in table.column("_fe").to_pylist()}
    # one data key per executor process (local[2]: at most a few workers), never per row
    print(f"\nSpark local[2]: {ROWS} rows, 4 partitions, {calls} KMS calls, "
          f"{len(data_keys)} data keys")
    assert 1 <= len(data_keys) <= 4 and 1 <= calls <= 8, (calls, len(data_keys))

    code = main(["decrypt", str(tmp_path / "enc"), "-o", str(tmp_path / "dec"),
                 "--record-id-field", "txn_id", "--namespace", "txn", "--kms-key-id", arn,
                 "--endpoint-url", moto_endpoint, "--region", "us-east-1"])
    assert code == 0
    got = pq.read_table(tmp_path / "dec").sort_by("txn_id")
    want = _read(plain).drop_columns(["region"])
    assert got.select(want.column_names).equals(want.cast(got.select(want.column_names).schema))
    assert main(["verify", str(tmp_path / "enc"), "-f", "pan", "-f", "ssn"]) == 0


def test_cli_output_decrypts_on_spark(spark, tmp_path: Path, moto_endpoint: str,
                                      new_kms_key) -> None:
    arn = new_kms_key()
    plain = tmp_path / "plain"
    _plain_dataset(plain)
    key = ["--kms-key-id", arn, "--endpoint-url", moto_endpoint, "--region", "us-east-1"]
    assert main(["encrypt", str(plain), "-o", str(tmp_path / "enc"), "--parquet-mode",
                 "fields", "-f", "pan", "-f", "amount", "--record-id-field", "txn_id",
                 "--namespace", "txn", *key]) == 0
    spec = KeyringSpec(kms_key_id=arn, region="us-east-1", endpoint_url=moto_endpoint)
    back = decrypt_columns(spark.read.parquet(str(tmp_path / "enc")), ["pan", "amount"], spec,
                           namespace="txn", record_id_column="txn_id",
                           types={"amount": "double"})
    rows = back.orderBy("txn_id").select("txn_id", "pan", "ssn", "amount").toArrow()
    want = _read(plain).select(["txn_id", "pan", "ssn", "amount"])
    assert rows.equals(want)


def test_a_changed_value_or_a_wrong_key_fails_on_spark(spark, tmp_path: Path,
                                                      moto_endpoint: str, new_kms_key) -> None:
    from pyspark.errors import PythonException

    arn, other = new_kms_key(), new_kms_key()
    spec = KeyringSpec(kms_key_id=arn, region="us-east-1", endpoint_url=moto_endpoint)
    df = spark.createDataFrame([(1, "4111111111111111"), (2, "5500005555555559")],
                               "txn_id bigint, pan string")
    encrypt_columns(df, ["pan"], spec, record_id_column="txn_id").write.parquet(
        str(tmp_path / "enc"))
    table = pq.read_table(tmp_path / "enc").sort_by("txn_id")
    # move row 1's ciphertext into row 2: each alone is a valid ciphertext, not of that record
    pans = table.column("pan").to_pylist()
    swapped = table.set_column(table.schema.get_field_index("pan"), "pan",
                               pa.array([pans[1], pans[0]]))
    pq.write_table(swapped, tmp_path / "swapped.parquet")
    with pytest.raises(PythonException, match=r"TamperError|DecryptionError|authentic"):
        decrypt_columns(spark.read.parquet(str(tmp_path / "swapped.parquet")), ["pan"], spec,
                        record_id_column="txn_id").collect()
    wrong = KeyringSpec(kms_key_id=other, region="us-east-1", endpoint_url=moto_endpoint)
    with pytest.raises(PythonException, match=r"UnwrapError|could not unwrap"):
        decrypt_columns(spark.read.parquet(str(tmp_path / "enc")), ["pan"], wrong,
                        record_id_column="txn_id").collect()


def test_the_spark_submit_job(tmp_path: Path, moto_endpoint: str, new_kms_key) -> None:
    """`python -m field_encryption.spark` as spark-submit runs it (its own session)."""
    arn = new_kms_key()
    plain = tmp_path / "plain"
    _plain_dataset(plain)
    env = {**os.environ, **AWS_ENV, "PYSPARK_PYTHON": sys.executable}
    common = ["--kms-key-id", arn, "--region", "us-east-1", "--endpoint-url", moto_endpoint,
              "--record-id-column", "txn_id", "--master", "local[2]"]
    proc = subprocess.run([sys.executable, "-m", "field_encryption.spark", "encrypt",
                           str(plain), str(tmp_path / "enc"), "-c", "pan", "-c", "amount",
                           *common], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "enc" / "_SUCCESS").exists()
    # the job's output, decrypted by the CLI, is the input
    assert main(["decrypt", str(tmp_path / "enc"), "-o", str(tmp_path / "dec"),
                 "--record-id-field", "txn_id", *common[:6]]) == 0
    got = pq.read_table(tmp_path / "dec").sort_by("txn_id")
    want = _read(plain)
    for column in ("txn_id", "pan", "ssn", "amount", "region"):
        assert got.column(column).to_pylist() == want.column(column).to_pylist(), column
