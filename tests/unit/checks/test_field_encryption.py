"""ENC-* check logic without the lab: the node is a stand-in that serves a configuration
file, KMS is a moto server on 127.0.0.1. The lab tests (tests/integration/
test_field_encryption_role.py) run the same checks on real nodes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from motokit import AWS_ENV, moto_server

from m7guard.checks import field_encryption


@dataclass
class _Out:
    rc: int
    stdout: str = ""
    stderr: str = ""


class _Node:
    """Answers the one command the KMS checks send: reading the configuration."""

    def __init__(self, config: dict[str, Any] | None) -> None:
        self.config = config

    def run(self, command: str, *args: str) -> _Out:
        assert command == "cat -- %s" and args == (field_encryption.CONFIG,)
        if self.config is None:
            return _Out(1, stderr="cat: No such file or directory")
        return _Out(0, yaml.safe_dump(self.config))


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Any:
    import boto3

    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return boto3.client("kms", region_name="eu-west-1", endpoint_url=moto_endpoint)


def _config(alias: str, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "kms": {"key_alias": alias, "region": "eu-west-1"},
            "tables": {"users": {"fields": ["ssn"]}}, "data_dirs": [], **extra}


def _key(kms: Any, policy: dict | None = None, rotate: bool = True) -> tuple[str, str]:
    alias = f"alias/enc-unit-{uuid.uuid4().hex[:10]}"
    kwargs = {"Policy": json.dumps(policy)} if policy else {}
    key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    if rotate:
        kms.enable_key_rotation(KeyId=key_id)
    return alias, key_id


def test_enc_001_passes_with_rotation_and_fails_without(aws):
    alias, key_id = _key(aws)
    evidence: dict[str, Any] = {}
    field_encryption.test_enc_001(_Node(_config(alias)), evidence)
    assert evidence["rotation_enabled"] is True and evidence["key_id"] == key_id
    assert evidence["endpoint"].startswith("http://127.0.0.1:")
    aws.disable_key_rotation(KeyId=key_id)
    evidence = {}
    with pytest.raises(AssertionError, match="automatic rotation is off"):
        field_encryption.test_enc_001(_Node(_config(alias)), evidence)
    assert evidence["rotation_enabled"] is False


def test_enc_001_fails_for_a_missing_key_and_a_wrong_key_id(aws):
    with pytest.raises(AssertionError, match="does not exist in eu-west-1"):
        field_encryption.test_enc_001(_Node(_config("alias/enc-unit-missing")), {})
    alias, _ = _key(aws)
    other = aws.create_key()["KeyMetadata"]["KeyId"]
    config = _config(alias)
    config["kms"]["key_id"] = other
    with pytest.raises(AssertionError, match="not to the configured key"):
        field_encryption.test_enc_001(_Node(config), {})


def test_enc_001_fails_for_a_disabled_key(aws):
    alias, key_id = _key(aws)
    aws.disable_key(KeyId=key_id)
    with pytest.raises(AssertionError, match="Disabled, not Enabled"):
        field_encryption.test_enc_001(_Node(_config(alias)), {})


WILDCARD = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Root", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "AnyoneDecrypts", "Effect": "Allow", "Principal": "*",
         "Action": "kms:Decrypt", "Resource": "*"},
    ],
}


def test_enc_002_fails_on_a_wildcard_and_passes_with_a_condition(aws):
    alias, key_id = _key(aws, WILDCARD)
    evidence: dict[str, Any] = {}
    with pytest.raises(AssertionError, match="AnyoneDecrypts"):
        field_encryption.test_enc_002(_Node(_config(alias)), evidence)
    assert evidence["open_statements"][0]["principal"] == ["*"]
    conditioned = json.loads(json.dumps(WILDCARD))
    conditioned["Statement"][1]["Condition"] = {"StringEquals": {"aws:PrincipalAccount": "1"}}
    aws.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(conditioned))
    evidence = {}
    field_encryption.test_enc_002(_Node(_config(alias)), evidence)
    assert evidence["open_statements"] == [] and evidence["statements"] == 2


def test_enc_002_passes_on_the_default_policy(aws):
    alias, _ = _key(aws)
    field_encryption.test_enc_002(_Node(_config(alias)), {})


def test_missing_configuration_is_an_error_not_a_result(aws):
    with pytest.raises(field_encryption.EncryptionStateError, match="ENC-003"):
        field_encryption.test_enc_001(_Node(None), {})


def test_without_credentials_the_kms_checks_error_and_never_ask_instance_metadata(
    monkeypatch: pytest.MonkeyPatch,
):
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")  # not disabled: the check must still not ask

    def no_metadata(*_a: Any, **_k: Any) -> None:
        raise AssertionError("instance metadata was asked")

    monkeypatch.setattr("botocore.utils.InstanceMetadataFetcher.retrieve_iam_role_credentials",
                        no_metadata)
    with pytest.raises(field_encryption.EncryptionStateError, match="no AWS credentials"):
        field_encryption.test_enc_001(_Node(_config("alias/x")), {})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"tables": {"users": {"fields": ["ssn"]}}}, "kms.key_alias"),
        ({"kms": {"key_alias": "alias/a"}, "tables": {"u": {"fields": ["x"]}}}, "kms.region"),
        ({"kms": {"key_alias": "alias/a", "region": "r"}, "tables": {}}, "no field policy"),
        ({"kms": {"key_alias": "alias/a", "region": "r"}, "tables": {"u": {"fields": []}}},
         "table u has no fields"),
    ],
)
def test_configuration_problems(document, problem):
    assert any(problem in p for p in field_encryption._config_problems(document))


def test_a_complete_configuration_has_no_problems():
    assert field_encryption._config_problems(_config("alias/a")) == []


def test_scan_job_uses_each_directory_table_policy():
    config = _config("alias/a", data_dirs=[{"path": "/srv/a", "table": "users"},
                                           {"path": "/srv/b", "table": "other"}])
    config["tables"]["users"]["optional"] = ["personal_info.phone"]
    job = field_encryption._scan_job(config, 10)
    assert job["dirs"] == [{"path": "/srv/a", "fields": ["ssn", "personal_info.phone"]},
                           {"path": "/srv/b", "fields": []}]
    with pytest.raises(field_encryption.EncryptionStateError, match="absolute path"):
        field_encryption._scan_job(_config("alias/a", data_dirs=[{"path": "rel"}]), 10)


def test_evidence_never_carries_a_full_number():
    assert field_encryption._masked("4111 1111 1111 1111") == "**** **** **** 1111"
    assert field_encryption._masked("***-**-6789") == "***-**-6789"
    assert field_encryption._masked("record 3 at 078-05-1120") == "record 3 at ***-**-1120"


def test_the_node_scanner_finds_masks_and_reports(tmp_path):
    """The scanner ENC-004 sends to the node, run here with this venv's field-encrypt."""
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "leak.jsonl").write_text(
        json.dumps({"_id": 1, "credit_card": "4539 1488 0343 6467", "ssn": "078-05-1120"}) + "\n")
    (data / "clean.csv").write_text("id,amount\n1,12.50\n")
    (data / "sub" / "notes.txt").write_text("refund to 4539148803436467 ok\nnothing\n")
    (data / "broken.json").write_text('{"not json\n')
    (data / "blob.bin").write_bytes(b"\0\1binary 4539148803436467")
    (data / "link").symlink_to("/etc/hostname")
    job = {"dirs": [{"path": str(data), "fields": ["ssn", "credit_card"]},
                    {"path": str(tmp_path / "missing"), "fields": []}],
           "max_files": 100, "shown": 20,
           "tool": str(Path(sys.executable).parent / "field-encrypt")}
    proc = subprocess.run([sys.executable, "-c", field_encryption._SCANNER, json.dumps(job)],
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert (out["files"], out["record_files"], out["text_files"], out["binary_skipped"]) == (
        5, 2, 2, 1)
    assert out["counts"] == {"unencrypted-field": 2, "pan": 2, "ssn": 1}
    assert {f["masked"] for f in out["findings"]} == {
        "", "**** **** **** 6467", "***-**-1120", "************6467"}
    assert "4539148803436467" not in proc.stdout and "4539 1488 0343 6467" not in proc.stdout
    assert out["errors"] == [f"{tmp_path / 'missing'} is not a directory"]
    assert any("broken.json: not readable as records" in n for n in out["notes"])
    assert any("link: not a regular file" in n for n in out["notes"])
    job["max_files"] = 2
    capped = subprocess.run([sys.executable, "-c", field_encryption._SCANNER, json.dumps(job)],
                            capture_output=True, text=True, check=True)
    assert "more than 2 files (max_files)" in json.loads(capped.stdout)["errors"]


def _wildcard_with(condition: dict[str, Any]) -> dict[str, Any]:
    policy = json.loads(json.dumps(WILDCARD))
    policy["Statement"][1]["Condition"] = condition
    return policy


@pytest.mark.parametrize("condition", [
    {"Bool": {"aws:SecureTransport": "true"}},
    {"StringEqualsIfExists": {"aws:PrincipalAccount": "123456789012"}},
    {"StringLike": {"kms:CallerAccount": "*"}},
    {"StringNotEquals": {"aws:PrincipalAccount": "999999999999"}},
    {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
    {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/reader"}},
])
def test_enc_002_a_condition_that_does_not_narrow_the_principals_is_no_exemption(
        aws, expect, condition) -> None:
    alias, _ = _key(aws, _wildcard_with(condition))
    evidence: dict[str, Any] = {}
    assert "AnyoneDecrypts" in expect.fail(field_encryption.test_enc_002, _Node(_config(alias)),
                                           evidence)
    assert evidence["open_statements"][0]["sid"] == "AnyoneDecrypts"


@pytest.mark.parametrize(("condition", "named"), [
    ({"StringEquals": {"aws:SomeFutureKey": "x"}}, "aws:SomeFutureKey"),
    ({"ForAnyValue:StringEquals": {"aws:PrincipalOrgPaths": "o-1/r-2/"}},
     "ForAnyValue:StringEquals"),
])
def test_enc_002_a_condition_the_check_does_not_know_is_an_error(aws, expect, condition,
                                                                 named) -> None:
    alias, _ = _key(aws, _wildcard_with(condition))
    message = expect.error(field_encryption.test_enc_002, _Node(_config(alias)), {})
    assert named in message and "AnyoneDecrypts" in message


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"kms:CallerAccount": "123456789012"}},
    {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
    {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*"}},
    {"Bool": {"aws:SecureTransport": "true"},
     "StringEquals": {"kms:CallerAccount": ["123456789012", "210987654321"],
                      "aws:SomeFutureKey": "x"}},
])
def test_enc_002_conditions_that_narrow_the_principals_exempt(aws, condition) -> None:
    alias, _ = _key(aws, _wildcard_with(condition))
    evidence: dict[str, Any] = {}
    field_encryption.test_enc_002(_Node(_config(alias)), evidence)
    assert evidence["open_statements"] == []


def _scan(tmp_path, records: list[dict[str, Any]], name: str = "users.jsonl") -> dict[str, Any]:
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    job = {"dirs": [{"path": str(data), "fields": []}], "max_files": 100, "shown": 20,
           "tool": str(Path(sys.executable).parent / "field-encrypt")}
    proc = subprocess.run([sys.executable, "-c", field_encryption._SCANNER, json.dumps(job)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def _ciphertext() -> str:
    from field_encryption import envelope

    return envelope.to_string(envelope.build(envelope.ALG_AES_256_GCM, b"k" * 16,
                                             b"n" * 12, b"4539148803436467" + b"t" * 16))


def test_the_scanner_skips_only_values_that_are_valid_envelopes(tmp_path) -> None:
    out = _scan(tmp_path, [
        {"_id": 1, "note": "fe1:4539 1488 0343 6467"},           # a prefix is not a ciphertext
        {"_id": 2, "_fe": {"v": 1, "x": "078-05-1120"}},         # nor is the header field
        {"_id": 3, "_fe_bidx": {"card": "4539148803436467"}},    # nor the blind-index field
        {"_id": 4, "ssn": _ciphertext()},                        # a real envelope is skipped
    ])
    detected = {k: n for k, n in out["counts"].items() if k in ("pan", "ssn")}
    assert detected == {"pan": 2, "ssn": 1}, out  # verify may add kinds of its own
    assert {f["at"].split(" ", 1)[1] for f in out["findings"]
            if f["kind"] in ("pan", "ssn")} == {
        "record 1 note", "record 2 _fe.x", "record 3 _fe_bidx.card"}


def test_the_scanner_reads_csv_header_columns_too(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text('_id,_fe,name\n1,"{""v"": 1, ""x"": ""4539148803436467""}",a\n'
                                f"2,{_ciphertext()},b\n")
    job = {"dirs": [{"path": str(data), "fields": []}], "max_files": 100, "shown": 20,
           "tool": str(Path(sys.executable).parent / "field-encrypt")}
    out = json.loads(subprocess.run([sys.executable, "-c", field_encryption._SCANNER,
                                     json.dumps(job)],
                                    capture_output=True, text=True, check=True).stdout)
    assert out["counts"] == {"pan": 1}, out


def test_the_node_scanner_reads_parquet_and_errors_where_it_cannot(tmp_path):
    """Parquet is binary: the scanner reads it (plaintext columns, card numbers in readable
    columns) instead of skipping it, and a node without pyarrow makes ENC-004 an error."""
    import subprocess
    import sys
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from field_encryption.keyrings import LocalKeyring, create_key_file
    from field_encryption.parquet import ParquetCrypto, ParquetPolicy, keyring_resolver

    data = tmp_path / "data"
    data.mkdir()
    table = pa.table({"txn": [1, 2], "credit_card": ["4539148803436467", "5500005555555559"],
                      "memo": ["refund to 4539 1488 0343 6467", "none"]})
    pq.write_table(table, data / "plain.parquet")
    keyring = LocalKeyring.from_file(create_key_file(tmp_path / "dev.key"))
    crypto = ParquetCrypto(keyring_resolver(lambda _name: keyring))
    crypto.write_table(table, data / "pme-open-footer.parquet",
                       ParquetPolicy({"pci": ["credit_card"]}, "footer", plaintext_footer=True))
    crypto.write_table(table, data / "pme-closed.parquet",
                       ParquetPolicy({"pci": ["credit_card", "memo"]}, "footer"))
    job = {"dirs": [{"path": str(data), "fields": ["credit_card", "ssn"]}], "max_files": 100,
           "shown": 20, "tool": str(Path(sys.executable).parent / "field-encrypt")}
    proc = subprocess.run([sys.executable, "-c", field_encryption._SCANNER, json.dumps(job)],
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert (out["parquet_files"], out["binary_skipped"], out["errors"]) == (3, 0, [])
    # plain.parquet: the card column in plaintext, two cards in it and one in memo;
    # pme-open-footer.parquet: the card column encrypted, memo still leaks one
    assert out["counts"] == {"plaintext-column": 1, "pan": 4}, out
    assert any("pme-closed.parquet: Parquet with an encrypted footer" in n for n in out["notes"])
    assert "4539148803436467" not in proc.stdout

    without = ("import sys; sys.modules['pyarrow'] = None; "
               "exec(compile(sys.argv.pop(1), 'scanner', 'exec'))")
    proc = subprocess.run([sys.executable, "-c", without, field_encryption._SCANNER,
                           json.dumps(job)],
                          capture_output=True, text=True, check=True)
    errors = json.loads(proc.stdout)["errors"]
    assert len(errors) == 3 and all("cannot read Parquet" in e for e in errors), errors


def test_the_node_scanner_reports_a_damaged_parquet_file_as_an_error(tmp_path):
    """Only a file ending in PARE counts as 'encrypted footer'; a truncated one is an error,
    never a file scanned clean."""
    import subprocess
    import sys
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    data.mkdir()
    whole = data / "cut.parquet"
    pq.write_table(pa.table({"credit_card": ["4539148803436467"]}), whole)
    whole.write_bytes(whole.read_bytes()[:-30])
    job = {"dirs": [{"path": str(data), "fields": ["credit_card"]}], "max_files": 100,
           "shown": 20, "tool": str(Path(sys.executable).parent / "field-encrypt")}
    proc = subprocess.run([sys.executable, "-c", field_encryption._SCANNER, json.dumps(job)],
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["parquet_files"] == 0 and len(out["errors"]) == 1, out
    assert "cut.parquet: not readable as Parquet" in out["errors"][0]
