"""Parquet Modular Encryption under AWS KMS (a moto server over HTTP) and the local key: round
trips, columns unreadable without the key, a plaintext footer that leaves the other columns
readable, tampered pages and footers, wrong and missing keys, partitioned datasets, rewrap
to another KMS key, and the CLI on files and dataset folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from columnarkit import SENSITIVE, card_table

from field_encryption.cli import main
from field_encryption.errors import ConfigurationError, DecryptionError, FieldEncryptionError
from field_encryption.keyrings import AwsKmsKeyring, LocalKeyring
from field_encryption.parquet import (
    ParquetCrypto,
    ParquetPolicy,
    decrypt_dataset,
    encrypt_dataset,
    keyring_resolver,
    verify_dataset,
)

POLICY = ParquetPolicy(column_keys={"pci": ["pan", "ssn"], "pii": ["name"]}, footer_key="footer",
                       plaintext_footer=True)


def _kms(endpoint: str, arn: str) -> AwsKmsKeyring:
    return AwsKmsKeyring(arn, endpoint_url=endpoint, region="us-east-1")


@pytest.fixture
def kms_crypto(moto_endpoint: str, new_kms_key) -> tuple[ParquetCrypto, str]:
    arn = new_kms_key()
    keyring = _kms(moto_endpoint, arn)
    return ParquetCrypto(keyring_resolver(lambda _name: keyring)), arn


def test_a_million_rows_three_sensitive_columns_round_trip(tmp_path: Path, kms_crypto) -> None:
    crypto, _ = kms_crypto
    table = card_table(1_000_000)
    path = tmp_path / "cards.parquet"
    crypto.write_table(table, path, POLICY)

    # without any key: the non-sensitive columns read (plaintext footer), the others do not
    plain = pq.read_table(path, columns=["id", "amount", "merchant"])
    assert plain.equals(table.select(["id", "amount", "merchant"]))
    for column in SENSITIVE:
        with pytest.raises(OSError, match=r"[Dd]ecrypt"):
            pq.read_table(path, columns=[column])
    raw = path.read_bytes()
    assert b"4111000000000042" not in raw and b"holder 42" not in raw

    fresh = ParquetCrypto(crypto._resolve)  # another process: no cached keys
    assert fresh.read_table(path).equals(table)
    # double wrapping: one KMS call per master key (pci, pii, footer), not per page or row
    assert crypto.counter.wraps <= 3 and fresh.counter.unwraps <= 3, (crypto.counter,
                                                                     fresh.counter)


def test_the_default_footer_is_encrypted(tmp_path: Path, local_keyring: LocalKeyring) -> None:
    crypto = ParquetCrypto(keyring_resolver(lambda _name: local_keyring))
    policy = ParquetPolicy(column_keys={"pci": ["pan"]}, footer_key="footer")
    assert policy.describe()["plaintext_footer"] is False
    path = tmp_path / "f.parquet"
    crypto.write_table(card_table(100), path, policy)
    with pytest.raises(OSError):
        pq.read_table(path, columns=["id"])
    assert crypto.read_table(path).num_rows == 100


def _column_chunk(crypto: ParquetCrypto, path: Path, name: str) -> tuple[int, int]:
    meta = pq.ParquetFile(path, decryption_properties=crypto.decryption_properties(path))
    group = meta.metadata.row_group(0)
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema == name:
            start = column.dictionary_page_offset or column.data_page_offset
            return start, column.total_compressed_size
    raise AssertionError(name)


def test_a_changed_byte_in_an_encrypted_page_fails(tmp_path: Path, kms_crypto) -> None:
    crypto, _ = kms_crypto
    path = tmp_path / "t.parquet"
    crypto.write_table(card_table(5000), path, POLICY)
    start, size = _column_chunk(crypto, path, "pan")
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x01
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(DecryptionError, match=r"bad\.parquet: authentication failed"):
        crypto.read_table(bad)


def test_a_changed_plaintext_footer_fails_with_the_key(tmp_path: Path, kms_crypto) -> None:
    """The plaintext footer is signed with the footer key: a reader with the key sees a
    change (here a row count in the footer's metadata)."""
    crypto, _ = kms_crypto
    path = tmp_path / "t.parquet"
    crypto.write_table(card_table(300), path, POLICY)
    data = bytearray(path.read_bytes())
    footer_len = int.from_bytes(data[-8:-4], "little")
    footer_start = len(data) - 8 - footer_len
    data[footer_start + footer_len // 3] ^= 0x01
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(DecryptionError, match=r"authentication failed.*signature"):
        crypto.read_table(bad)


def test_a_wrong_kms_key_cannot_read(tmp_path: Path, kms_crypto, moto_endpoint: str,
                                     new_kms_key) -> None:
    crypto, _ = kms_crypto
    path = tmp_path / "t.parquet"
    crypto.write_table(card_table(100), path, POLICY)
    other = _kms(moto_endpoint, new_kms_key())
    with pytest.raises(FieldEncryptionError):
        ParquetCrypto(keyring_resolver(lambda _name: other)).read_table(path)


def test_a_missing_footer_key_is_a_clear_error(tmp_path: Path, local_keyring) -> None:
    crypto = ParquetCrypto(keyring_resolver(lambda _name: local_keyring))
    path = tmp_path / "t.parquet"
    crypto.write_table(card_table(100), path, ParquetPolicy({"pci": ["pan"]}, "footer"))

    def only_pci(name: str) -> LocalKeyring:
        if name != "pci":
            raise ConfigurationError(f"no keyring for master key {name!r}")
        return local_keyring

    with pytest.raises(ConfigurationError, match="master key 'footer'"):
        ParquetCrypto(only_pci).read_table(path)


def test_the_policy_refuses_what_parquet_cannot_hold(tmp_path: Path, local_keyring) -> None:
    with pytest.raises(ConfigurationError, match="master key name 'arn:aws:kms"):
        ParquetPolicy({"arn:aws:kms:us-east-1:1:key/x": ["pan"]}, "footer")
    with pytest.raises(ConfigurationError, match="'pan' is under two master keys"):
        ParquetPolicy({"a": ["pan"], "b": ["pan"]}, "footer")
    with pytest.raises(ConfigurationError, match="column_keys"):
        ParquetPolicy({}, "footer")
    crypto = ParquetCrypto(keyring_resolver(lambda _name: local_keyring))
    target = tmp_path / "t.parquet"
    with pytest.raises(ConfigurationError, match="no column 'card'"):
        crypto.write_table(card_table(10), target, ParquetPolicy({"pci": ["card"]}, "footer"))
    assert not target.exists() and sorted(os.listdir(tmp_path)) == ["dev-key.json"]


def _dataset(tmp_path: Path, rows: int = 2000) -> Path:
    table = card_table(rows).append_column("region", pa.array(
        ["eu" if i % 3 else "us" for i in range(rows)]))
    folder = tmp_path / "plain"
    pq.write_to_dataset(table, folder, partition_cols=["region"])
    return folder


def test_a_partitioned_dataset_round_trips(tmp_path: Path, kms_crypto) -> None:
    crypto, _ = kms_crypto
    plain = _dataset(tmp_path)
    encrypted, decrypted = tmp_path / "enc", tmp_path / "dec"
    assert encrypt_dataset(crypto, plain, encrypted, POLICY) == 2000
    assert sorted(p.name for p in encrypted.iterdir()) == ["region=eu", "region=us"]
    assert decrypt_dataset(crypto, encrypted, decrypted) == 2000
    before = ds.dataset(plain, partitioning="hive").to_table().sort_by("id")
    after = ds.dataset(decrypted, partitioning="hive").to_table().sort_by("id")
    assert after.equals(before)
    findings, summary = verify_dataset(encrypted, SENSITIVE)
    assert findings == [] and summary["files"] == 2
    assert all(sorted(cols) == sorted(SENSITIVE) for cols in
               summary["encrypted_columns"].values())
    # an existing destination is never merged into
    with pytest.raises(ConfigurationError, match="exists"):
        encrypt_dataset(crypto, plain, encrypted, POLICY)


def test_verify_finds_plaintext_sensitive_columns_and_card_numbers(tmp_path: Path,
                                                                  kms_crypto) -> None:
    crypto, _ = kms_crypto
    table = pa.table({"pan": ["4111111111111111", "5500005555555559"],
                      "memo": ["paid with 4012 8888 8888 1881", "none"]})
    path = tmp_path / "leaky.parquet"
    pq.write_table(table, path)
    findings, _ = verify_dataset(path, ["pan"])
    kinds = {(f.column, f.kind) for f in findings}
    assert ("pan", "plaintext-column") in kinds and ("memo", "pan") in kinds
    assert all("4012" not in f.masked[:10] for f in findings if f.kind == "pan")
    encrypted = tmp_path / "memo-left.parquet"
    crypto.write_table(table, encrypted, ParquetPolicy({"pci": ["pan"]}, "footer",
                                                        plaintext_footer=True))
    findings, _ = verify_dataset(encrypted, ["pan"])
    assert [(f.column, f.kind) for f in findings] == [("memo", "pan")]


def test_rewrap_moves_the_keys_to_a_new_kms_key(tmp_path: Path, moto_endpoint: str,
                                                new_kms_key) -> None:
    old, new = _kms(moto_endpoint, new_kms_key()), _kms(moto_endpoint, new_kms_key())
    path = tmp_path / "t.parquet"
    policy = ParquetPolicy({"pci": ["pan"]}, "footer", external_key_material=True)
    ParquetCrypto(keyring_resolver(lambda _n: old)).write_table(card_table(500), path, policy)
    data_before = path.read_bytes()
    ParquetCrypto(keyring_resolver(lambda _n: old),
                  keyring_resolver(lambda _n: new)).rewrap(path)
    assert path.read_bytes() == data_before  # the data is not rewritten
    assert ParquetCrypto(keyring_resolver(lambda _n: new)).read_table(path).num_rows == 500
    with pytest.raises(FieldEncryptionError):
        ParquetCrypto(keyring_resolver(lambda _n: old)).read_table(path)
    inside = tmp_path / "inside.parquet"
    ParquetCrypto(keyring_resolver(lambda _n: old)).write_table(
        card_table(5), inside, ParquetPolicy({"pci": ["pan"]}, "footer"))
    with pytest.raises(ConfigurationError, match="key material is inside the file"):
        ParquetCrypto(keyring_resolver(lambda _n: old)).rewrap(inside)


def test_the_cli_on_a_dataset_folder(tmp_path: Path, moto_endpoint: str, new_kms_key,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    arn, arn2 = new_kms_key(), new_kms_key()
    plain = _dataset(tmp_path, 300)
    key = ["--kms-key-id", arn, "--endpoint-url", moto_endpoint, "--region", "us-east-1"]
    assert main(["encrypt", str(plain), "-o", str(tmp_path / "enc"), "-f", "pan", "-f", "ssn",
                 "-f", "name", "--plaintext-footer", "--external-key-material", *key]) == 0
    err = capsys.readouterr().err
    assert "plaintext footer" in err and "encrypted 300 rows" in err
    assert main(["verify", str(tmp_path / "enc"), "-f", "pan", "-f", "ssn", "--format",
                 "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "clean" and report["files"] == 2 and not report["authenticated"]
    assert main(["verify", str(plain), "-f", "pan"]) == 2
    assert "plaintext-column in column pan" in capsys.readouterr().out
    assert main(["rewrap", str(tmp_path / "enc"), "--in-place", *key, "--to-kms-key-id",
                 arn2]) == 0
    key2 = ["--kms-key-id", arn2, "--endpoint-url", moto_endpoint, "--region", "us-east-1"]
    assert main(["decrypt", str(tmp_path / "enc"), "-o", str(tmp_path / "dec"), *key2]) == 0
    back = ds.dataset(tmp_path / "dec", partitioning="hive").to_table().sort_by("id")
    assert back.equals(ds.dataset(plain, partitioning="hive").to_table().sort_by("id"))
    # refused: options that do not apply, a folder in place, no output
    capsys.readouterr()
    assert main(["encrypt", str(plain), "-o", str(tmp_path / "x"), "-f", "pan",
                 "--deterministic", "pan", *key]) == 1
    assert "--deterministic does not apply to Parquet" in capsys.readouterr().err
    assert main(["encrypt", str(plain), "--in-place", "-f", "pan", *key]) == 1
    assert "pass --output" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".fe-tmp")]


def test_the_local_keyring_keeps_32_byte_keys_for_records(local_key_file: Path) -> None:
    """Parquet's 16-byte key-encryption keys are accepted only where asked for: a record's
    data key must still be 32 bytes."""
    keyring = LocalKeyring.from_file(local_key_file)
    short = keyring.wrap(b"k" * 16, {"t": "x"})
    with pytest.raises(FieldEncryptionError):
        keyring.unwrap(short, {"t": "x"})
    assert keyring.unwrap(short, {"t": "x"}, key_lengths=(16,)) == b"k" * 16


def test_verify_with_the_key_finds_a_plaintext_column_under_an_encrypted_footer(
        tmp_path: Path, local_keyring: LocalKeyring) -> None:
    """Columns outside column_keys stay plaintext pages even when the footer is encrypted:
    verify reads each column with the footer key alone to tell them apart."""
    crypto = ParquetCrypto(keyring_resolver(lambda _name: local_keyring))
    path = tmp_path / "half.parquet"
    crypto.write_table(card_table(50), path, ParquetPolicy({"pci": ["pan"]}, "footer"))
    findings, summary = verify_dataset(path, ["pan", "ssn"], crypto)
    assert [(f.column, f.kind) for f in findings
            if f.kind == "plaintext-column"] == [("ssn", "plaintext-column")]
    assert summary["encrypted_columns"]["half.parquet"] == ["pan"]
    assert summary["plaintext_footer"] is False
    with pytest.raises(ConfigurationError, match="footer is encrypted"):
        verify_dataset(path, ["pan"])
    with pytest.raises(ConfigurationError, match="also a column key"):
        ParquetPolicy({"footer": ["pan"]}, "footer")


def test_verify_scans_numbers_and_nested_values_too(tmp_path: Path) -> None:
    table = pa.table({"card_number": pa.array([4539148803436467], pa.int64()),
                      "customer": [{"name": "x", "card": "5500 0055 5555 5559"}]})
    pq.write_table(table, tmp_path / "t.parquet")
    findings, _ = verify_dataset(tmp_path / "t.parquet", [])
    assert sorted((f.column, f.masked) for f in findings) == [
        ("card_number", "************6467"), ("customer.card", "**** **** **** 5559")]


def test_a_row_whose_header_leaves_a_column_out_fails(tmp_path: Path, local_key_file: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Fields mode: a later row whose pan is plaintext, beside a valid header that lists
    only its ssn, is refused by decrypt (not returned as decrypted) and found by verify."""
    key = ["--local-key", str(local_key_file)]
    plain = tmp_path / "plain.parquet"
    pq.write_table(card_table(2).select(["id", "pan", "ssn"]), plain)
    for name, fields in (("both", ["-f", "pan", "-f", "ssn"]), ("ssn", ["-f", "ssn"])):
        assert main(["encrypt", str(plain), "-o", str(tmp_path / f"{name}.parquet"),
                     "--parquet-mode", "fields", "--record-id-field", "id", *fields,
                     *key]) == 0
    both = pq.read_table(tmp_path / "both.parquet")
    ssn_only = pq.read_table(tmp_path / "ssn.parquet")
    # row 0 genuine (pan and ssn encrypted); row 1 from the ssn-only file: pan in plaintext
    forged = pa.concat_tables([both.slice(0, 1), ssn_only.slice(1, 1).cast(both.schema)])
    pq.write_table(forged, tmp_path / "forged.parquet")
    capsys.readouterr()
    assert main(["decrypt", str(tmp_path / "forged.parquet"), "-o",
                 str(tmp_path / "out.parquet"), "--record-id-field", "id", *key]) == 1
    assert "pan is not among the record's encrypted fields" in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists()
    assert main(["verify", str(tmp_path / "forged.parquet"), "-f", "pan", "-f", "ssn",
                 "--record-id-field", "id", *key]) == 2
    out = capsys.readouterr().out
    assert "unencrypted-field in column pan" in out and "decrypt-failed" in out


def test_a_corrupt_parquet_file_is_a_clear_error(tmp_path: Path, local_key_file: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(card_table(10), bad)
    bad.write_bytes(bad.read_bytes()[:-20] + b"PAR1")
    capsys.readouterr()
    code = main(["encrypt", str(bad), "-o", str(tmp_path / "x.parquet"), "-f", "pan",
                 "--local-key", str(local_key_file)])
    err = capsys.readouterr().err
    assert code == 1 and "bad.parquet: not readable as Parquet" in err, err
    assert "Traceback" not in err and not (tmp_path / "x.parquet").exists()
