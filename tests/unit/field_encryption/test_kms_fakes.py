"""KMS behaviour moto does not model: throttling, disabled keys, context and key checks.

Throttling goes through botocore's Stubber on a real boto3 client (no network); the
rest through a strict in-memory KMS (see conftest.FakeKms).
"""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber

from field_encryption import AwsKmsKeyring, FieldEncryption, MultiKeyring
from field_encryption.client import context_for
from field_encryption.errors import (
    KeyringError,
    KeyUnavailableError,
    ThrottledError,
    UnwrapError,
)
from field_encryption.keyrings.aws_kms import kms_client_config

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def stubbed(aws_env):
    import boto3

    client = boto3.client("kms", region_name="us-east-1", config=kms_client_config())
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _generate_ok(stubber: Stubber) -> None:
    stubber.add_response(
        "generate_data_key",
        {"KeyId": ARN, "Plaintext": b"\x01" * 32, "CiphertextBlob": b"wrapped-blob"},
        {"KeyId": ARN, "KeySpec": "AES_256", "EncryptionContext": ANY},
    )


def test_throttling_is_retried_with_backoff_then_succeeds(stubbed) -> None:
    client, stubber = stubbed
    for _ in range(3):
        stubber.add_client_error("generate_data_key", "ThrottlingException", http_status_code=400)
    _generate_ok(stubber)
    delays: list[float] = []
    keyring = AwsKmsKeyring(ARN, client=client, sleep=delays.append, jitter=lambda: 1.0)
    key, edks = keyring.generate(context_for("t"))
    assert key == b"\x01" * 32 and edks[0].blob == b"wrapped-blob"
    assert delays == [0.05, 0.1, 0.2]  # exponential backoff (full jitter at its maximum)


def test_throttling_retries_exhausted_raise_typed_error(stubbed) -> None:
    client, stubber = stubbed
    for _ in range(4):
        stubber.add_client_error("generate_data_key", "ThrottlingException", http_status_code=400)
    keyring = AwsKmsKeyring(ARN, client=client, max_attempts=4, sleep=lambda _: None)
    fe = FieldEncryption(keyring=keyring, namespace="t")
    with pytest.raises(ThrottledError, match="4 attempts"):
        fe.encrypt_fields({"_id": "1", "ssn": "123-45-6789"}, ["ssn"])
    assert issubclass(ThrottledError, KeyringError)


def test_backoff_is_capped(stubbed) -> None:
    client, stubber = stubbed
    for _ in range(5):
        stubber.add_client_error("decrypt", "RequestLimitExceeded", http_status_code=400)
    delays: list[float] = []
    keyring = AwsKmsKeyring(
        ARN, client=client, max_attempts=5, max_delay=0.15, sleep=delays.append, jitter=lambda: 1.0
    )
    from field_encryption.keyrings.base import EncryptedDataKey

    with pytest.raises(ThrottledError):
        keyring.unwrap([EncryptedDataKey("aws-kms", ARN, b"x")], context_for("t"))
    assert delays == [0.05, 0.1, 0.15, 0.15]


def test_non_retryable_error_is_not_retried(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("generate_data_key", "DisabledException", http_status_code=400)
    keyring = AwsKmsKeyring(ARN, client=client, sleep=lambda _: pytest.fail("must not retry"))
    with pytest.raises(KeyUnavailableError, match="DisabledException"):
        keyring.generate(context_for("t"))


def test_disabled_key_refuses_encrypt_and_decrypt(fake_kms, user_record) -> None:
    arn = fake_kms.create_key()
    fe = FieldEncryption(keyring=AwsKmsKeyring(arn, client=fake_kms), namespace="users")
    encrypted = fe.encrypt_fields(user_record, ["ssn"])
    fake_kms.disable(arn)
    reader = FieldEncryption(keyring=AwsKmsKeyring(arn, client=fake_kms), namespace="users")
    with pytest.raises(KeyUnavailableError, match="enabled"):
        reader.decrypt_fields(encrypted)
    fresh = FieldEncryption(keyring=AwsKmsKeyring(arn, client=fake_kms), namespace="users")
    with pytest.raises(KeyUnavailableError):
        fresh.encrypt_fields(user_record, ["ssn"])


def test_encryption_context_binds_namespace(fake_kms, user_record) -> None:
    arn = fake_kms.create_key()
    keyring = AwsKmsKeyring(arn, client=fake_kms)
    encrypted = FieldEncryption(keyring=keyring, namespace="users").encrypt_fields(
        user_record, ["ssn"]
    )
    fake_kms.calls.clear()
    with pytest.raises(UnwrapError, match="InvalidCiphertextException"):
        FieldEncryption(keyring=keyring, namespace="orders").decrypt_fields(encrypted)
    assert fake_kms.calls == ["Decrypt"]  # refused by KMS itself, before any field


def test_wrong_key_id_for_wrapped_key(fake_kms) -> None:
    a, b = fake_kms.create_key(), fake_kms.create_key()
    context = context_for("t")
    _, edks = AwsKmsKeyring(a, client=fake_kms).generate(context)
    alias_like = AwsKmsKeyring("alias/other", client=fake_kms)
    fake_kms.keys["alias/other"] = fake_kms.keys[b]
    with pytest.raises(UnwrapError, match="IncorrectKeyException"):
        alias_like.unwrap(edks, context)


def test_multi_keyring_falls_back_when_primary_is_disabled(fake_kms, user_record) -> None:
    primary, dr = fake_kms.create_key("us-east-1"), fake_kms.create_key("us-west-2")
    multi = MultiKeyring(
        AwsKmsKeyring(primary, client=fake_kms), [AwsKmsKeyring(dr, client=fake_kms)]
    )
    encrypted = FieldEncryption(keyring=multi, namespace="users").encrypt_fields(
        user_record, ["ssn", "personal_info"]
    )
    fake_kms.disable(primary)
    reader = FieldEncryption(
        keyring=MultiKeyring(
            AwsKmsKeyring(primary, client=fake_kms), [AwsKmsKeyring(dr, client=fake_kms)]
        ),
        namespace="users",
    )
    assert reader.decrypt_fields(encrypted) == user_record
    fake_kms.disable(dr)
    reader2 = FieldEncryption(keyring=multi, namespace="users")
    with pytest.raises(UnwrapError, match="KeyUnavailableError"):
        reader2.decrypt_fields(encrypted)


def test_rewrap_uses_reencrypt_with_source_and_destination_context(fake_kms, user_record):
    old, new = fake_kms.create_key(), fake_kms.create_key()
    fe = FieldEncryption(keyring=AwsKmsKeyring(old, client=fake_kms), namespace="users")
    encrypted = fe.encrypt_fields(user_record, ["ssn"])
    fake_kms.calls.clear()
    source = FieldEncryption(keyring=AwsKmsKeyring(old, client=fake_kms), namespace="users")
    rewrapped = source.rewrap(encrypted, AwsKmsKeyring(new, client=fake_kms))
    # Decrypt: the data key, to verify the record MAC before vouching for the new
    # wrapping; ReEncrypt: the new wrapping, without the key leaving KMS again
    assert fake_kms.calls == ["Decrypt", "ReEncrypt"]
    fake_kms.disable(old)
    reader = FieldEncryption(keyring=AwsKmsKeyring(new, client=fake_kms), namespace="users")
    assert reader.decrypt_fields(rewrapped) == user_record


def test_kms_error_codes_map_to_typed_errors(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("generate_data_key", "AccessDeniedException", http_status_code=400)
    stubber.add_client_error("generate_data_key", "ValidationException", http_status_code=400)
    keyring = AwsKmsKeyring(ARN, client=client)
    with pytest.raises(KeyUnavailableError, match="AccessDeniedException"):
        keyring.generate(context_for("t"))
    with pytest.raises(KeyringError, match="ValidationException"):
        keyring.generate(context_for("t"))
