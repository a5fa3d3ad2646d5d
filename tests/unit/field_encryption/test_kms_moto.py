"""The aws_kms keyring through real boto3 over HTTP to a moto server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from field_encryption import AwsKmsKeyring, FieldEncryption, MultiKeyring
from field_encryption.client import context_for
from field_encryption.errors import UnwrapError


def counting(client):
    """Record every KMS operation a boto3 client sends."""
    calls: list[str] = []
    client.meta.events.register("before-call.kms.*", lambda model, **_: calls.append(model.name))
    return calls


def test_generate_and_decrypt_over_http(moto_endpoint, new_kms_key, user_record) -> None:
    arn = new_kms_key()
    keyring = AwsKmsKeyring(arn, endpoint_url=moto_endpoint)
    assert keyring.region == "us-east-1"
    calls = counting(keyring.client())
    fe = FieldEncryption(keyring=keyring, namespace="users")
    encrypted = fe.encrypt_fields(user_record, ["ssn", "credit_card", "personal_info"])
    wrapped = encrypted["_fe"]["w"]
    assert [w["p"] for w in wrapped] == ["aws-kms"] and wrapped[0]["k"] == arn
    reader = FieldEncryption(
        keyring=AwsKmsKeyring(arn, endpoint_url=moto_endpoint), namespace="users"
    )
    assert reader.decrypt_fields(encrypted) == user_record
    assert calls == ["GenerateDataKey"]


def test_alias_key_id(moto_endpoint, new_kms_key, user_record) -> None:
    arn = new_kms_key(alias="alias/fe-users")
    fe = FieldEncryption(
        keyring=AwsKmsKeyring("alias/fe-users", region="us-east-1", endpoint_url=moto_endpoint),
        namespace="users",
    )
    encrypted = fe.encrypt_fields(user_record, ["ssn"])
    assert encrypted["_fe"]["w"][0]["k"] == arn
    assert fe.decrypt_fields(encrypted) == user_record


def test_cache_makes_one_kms_call_for_many_records(moto_endpoint, new_kms_key) -> None:
    keyring = AwsKmsKeyring(new_kms_key(), endpoint_url=moto_endpoint)
    calls = counting(keyring.client())
    fe = FieldEncryption(keyring=keyring, namespace="bulk")
    out = [fe.encrypt_fields({"_id": i, "a": "x", "b": {"c": i}}, ["a", "b.c"]) for i in range(500)]
    assert calls == ["GenerateDataKey"]
    reader = FieldEncryption(keyring=keyring, namespace="bulk")
    for record in out:
        reader.decrypt_fields(record)
    assert calls == ["GenerateDataKey", "Decrypt"]


def test_cache_off_calls_kms_per_record(moto_endpoint, new_kms_key) -> None:
    keyring = AwsKmsKeyring(new_kms_key(), endpoint_url=moto_endpoint)
    calls = counting(keyring.client())
    fe = FieldEncryption(keyring=keyring, namespace="bulk", cache=False)
    keys = {fe.encrypt_fields({"_id": i, "a": "x"}, ["a"])["_fe"]["k"] for i in range(5)}
    assert len(keys) == 5 and calls == ["GenerateDataKey"] * 5


def test_multi_keyring_other_region_decrypts_alone(moto_endpoint, new_kms_key, user_record):
    primary = new_kms_key("us-east-1")
    dr = new_kms_key("eu-west-1")
    assert ":eu-west-1:" in dr
    multi = MultiKeyring(
        AwsKmsKeyring(primary, endpoint_url=moto_endpoint),
        [AwsKmsKeyring(dr, endpoint_url=moto_endpoint)],
    )
    fe = FieldEncryption(keyring=multi, namespace="users")
    encrypted = fe.encrypt_fields(user_record, ["ssn", "personal_info"])
    assert [w["k"] for w in encrypted["_fe"]["w"]] == [primary, dr]
    dr_only = AwsKmsKeyring(dr, endpoint_url=moto_endpoint)
    dr_calls = counting(dr_only.client())
    assert FieldEncryption(keyring=dr_only, namespace="users").decrypt_fields(encrypted) == (
        user_record
    )
    assert dr_calls == ["Decrypt"]  # the primary region's wrapped key was skipped locally
    # the same through the seed-style constructor with an additional key id
    seeded = FieldEncryption(
        key_provider="aws_kms",
        key_id=dr,
        additional_key_ids=[primary],
        endpoint_url=moto_endpoint,
        namespace="users",
    )
    assert seeded.decrypt_fields(encrypted) == user_record


def test_unrelated_key_cannot_unwrap(moto_endpoint, new_kms_key, user_record) -> None:
    fe = FieldEncryption(
        keyring=AwsKmsKeyring(new_kms_key(), endpoint_url=moto_endpoint), namespace="users"
    )
    encrypted = fe.encrypt_fields(user_record, ["ssn"])
    other = FieldEncryption(
        keyring=AwsKmsKeyring(new_kms_key(), endpoint_url=moto_endpoint), namespace="users"
    )
    with pytest.raises(UnwrapError):
        other.decrypt_fields(encrypted)


def test_reencrypt_over_http(moto_endpoint, new_kms_key, user_record) -> None:
    old_arn, new_arn = new_kms_key(), new_kms_key()
    old = AwsKmsKeyring(old_arn, endpoint_url=moto_endpoint)
    new = AwsKmsKeyring(new_arn, endpoint_url=moto_endpoint)
    calls = counting(new.client())
    fe = FieldEncryption(keyring=old, namespace="users")
    encrypted = fe.encrypt_fields(user_record, ["ssn", "credit_card"])
    memo: dict = {}
    rewrapped = fe.rewrap(encrypted, new, memo)
    fe.rewrap(fe.encrypt_fields(user_record, ["ssn"]), new, memo)  # same data key: memoised
    assert calls == ["ReEncrypt"]
    assert rewrapped["_fe"]["w"][0]["k"] == new_arn
    assert rewrapped["_fe"]["k"] == encrypted["_fe"]["k"]
    assert {k: v for k, v in rewrapped.items() if k != "_fe"} == {
        k: v for k, v in encrypted.items() if k != "_fe"
    }
    assert FieldEncryption(keyring=new, namespace="users").decrypt_fields(rewrapped) == (
        user_record
    )


def test_keyring_direct_calls(moto_endpoint, new_kms_key) -> None:
    keyring = AwsKmsKeyring(new_kms_key(), endpoint_url=moto_endpoint)
    context = context_for("t")
    key, edks = keyring.generate(context)
    assert len(key) == 32 and keyring.unwrap(edks, context) == key
    wrapped = keyring.wrap(key, context)
    assert keyring.unwrap(wrapped, context) == key


# The seed document's "Advanced Encryption" block, character for character.
SEED = """\
# Field-level encryption
from mapr.security import FieldEncryption

encryptor = FieldEncryption(
    key_provider='aws_kms',
    key_id='arn:aws:kms:region:account:key/key-id'
)

# Encrypt sensitive fields
encrypted_data = encryptor.encrypt_fields(
    data=user_data,
    fields=['ssn', 'credit_card', 'personal_info']
)

# Store encrypted data
mapr_db.insert('/user_profiles', encrypted_data)
"""
SEED_KEY_PLACEHOLDER = "arn:aws:kms:region:account:key/key-id"
FAKE_MAPR = Path(__file__).resolve().parents[2] / "fakes" / "seed_mapr"

# What the seed leaves to its reader: the record, and a MapR-DB table (FAKE: MapR-DB cannot
# run here, so inserts are kept in a list the test reads back).
SEED_PRELUDE = """\
import json
user_data = {"_id": "u1", "name": "Ada", "ssn": "123-45-6789",
             "credit_card": "4111 1111 1111 1111",
             "personal_info": {"email": "ada@example.com", "age": 36}}


class FakeMaprDbTable:
    def __init__(self):
        self.rows = []

    def insert(self, path, document):
        self.rows.append((path, document))


mapr_db = FakeMaprDbTable()
"""

SEED_EPILOGUE = """
[(path, stored)] = mapr_db.rows
assert path == "/user_profiles"
for name in ("ssn", "credit_card", "personal_info"):
    assert stored[name].startswith("fe1:"), name
assert stored["name"] == "Ada"
assert encryptor.decrypt_fields(data=stored) == user_data
print(json.dumps(sorted(stored)))
"""


def test_seed_example_runs_unchanged_against_moto(moto_endpoint, new_kms_key, tmp_path):
    """The seed's block runs as written; only its placeholder key ARN becomes a real key's,
    and the endpoint comes from AWS_ENDPOINT_URL, as it would on any boto3 client."""
    arn = new_kms_key()
    assert SEED.count(SEED_KEY_PLACEHOLDER) == 1
    block = SEED.replace(SEED_KEY_PLACEHOLDER, arn)
    script = tmp_path / "seed.py"
    script.write_text(SEED_PRELUDE + block + SEED_EPILOGUE)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(FAKE_MAPR),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("AWS_REGION", None)
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["_fe", "_id", "credit_card", "name", "personal_info",
                                         "ssn"]
