"""Fixtures for field_encryption: a moto KMS server on 127.0.0.1, a strict fake KMS, keys.

Nothing here reaches AWS: boto3 gets dummy credentials, instance metadata is disabled,
and every client talks to the local moto server through endpoint_url.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from field_encryption import FieldEncryption, KeyVault, LocalKeyring, create_key_file
from field_encryption.aad import join

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/field-encryption-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/field-encryption-tests/credentials",
}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy AWS settings for every test here (undone after each test)."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return dict(AWS_ENV)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server (KMS) listening on 127.0.0.1 only."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def kms_admin(moto_endpoint: str) -> Any:
    """A boto3 KMS client on the moto server, for creating keys in tests."""
    import boto3

    return boto3.client("kms", region_name="us-east-1", endpoint_url=moto_endpoint)


@pytest.fixture
def new_kms_key(moto_endpoint: str) -> Any:
    """Create a symmetric KMS key in a region on the moto server; returns its ARN."""
    import boto3

    def create(region: str = "us-east-1", alias: str | None = None) -> str:
        client = boto3.client("kms", region_name=region, endpoint_url=moto_endpoint)
        arn = client.create_key(Description="field-encryption test")["KeyMetadata"]["Arn"]
        if alias:
            client.create_alias(AliasName=alias, TargetKeyId=arn)
        return arn

    return create


@pytest.fixture
def local_key_file(tmp_path: Path) -> Path:
    return create_key_file(tmp_path / "dev-key.json")


@pytest.fixture
def local_keyring(local_key_file: Path) -> LocalKeyring:
    return LocalKeyring.from_file(local_key_file)


@pytest.fixture(scope="session")
def shared_keyring() -> LocalKeyring:
    """An in-memory local keyring shared by property tests (no file, no state to reset)."""
    return LocalKeyring(os.urandom(32), "local:session")


@pytest.fixture
def vault(local_keyring: LocalKeyring) -> KeyVault:
    return KeyVault.create(local_keyring)


@pytest.fixture
def fe(local_keyring: LocalKeyring, vault: KeyVault) -> FieldEncryption:
    return FieldEncryption(keyring=local_keyring, namespace="users", vault=vault)


@pytest.fixture
def user_record() -> dict[str, Any]:
    return {
        "_id": "u-1001",
        "name": "Ada",
        "ssn": "123-45-6789",
        "credit_card": "4111 1111 1111 1111",
        "personal_info": {
            "email": "ada@example.com",
            "phone": "+1 555 0100",
            "address": {"zip": "02139", "lines": ["1 Main St", "Apt 2"]},
            "age": 36,
            "vip": True,
            "score": 0.5,
            "nickname": None,
        },
        "cards": [{"number": "5500 0000 0000 0004"}, {"number": "4012888888881881"}],
    }


# -- a strict in-memory KMS ----------------------------------------------------------------
class FakeKms:
    """A KMS client double that enforces what moto does not.

    - the encryption context must match exactly (it is the AEAD's associated data);
    - a KeyId on Decrypt must name the key that wrapped the blob (IncorrectKeyException);
    - disabled keys refuse every operation (DisabledException);
    - ``fail_next`` queues error codes (e.g. ThrottlingException) for the next calls.
    """

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_next: list[str] = []

    def create_key(self, region: str = "us-east-1") -> str:
        arn = f"arn:aws:kms:{region}:111122223333:key/{uuid.uuid4()}"
        self.keys[arn] = {"aead": AESGCM(AESGCM.generate_key(256)), "enabled": True}
        return arn

    def disable(self, arn: str) -> None:
        self.keys[arn]["enabled"] = False

    @staticmethod
    def _error(code: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, operation)

    def _begin(self, operation: str) -> None:
        self.calls.append(operation)
        if self.fail_next:
            raise self._error(self.fail_next.pop(0), operation)

    def _key(self, key_id: str, operation: str) -> dict[str, Any]:
        key = self.keys.get(key_id)
        if key is None:
            raise self._error("NotFoundException", operation)
        if not key["enabled"]:
            raise self._error("DisabledException", operation)
        return key

    @staticmethod
    def _aad(context: dict[str, str]) -> bytes:
        parts = []
        for k in sorted(context):
            parts += [k.encode(), context[k].encode()]
        return join(parts)

    def _wrap(self, arn: str, plaintext: bytes, context: dict[str, str]) -> bytes:
        key = self._key(arn, "Encrypt")
        nonce = os.urandom(12)
        ident = arn.encode()
        blob = key["aead"].encrypt(nonce, plaintext, self._aad(context))
        return len(ident).to_bytes(2, "big") + ident + nonce + blob

    def _unwrap(self, blob: bytes, context: dict[str, str], operation: str) -> tuple[str, bytes]:
        size = int.from_bytes(blob[:2], "big")
        arn = blob[2 : 2 + size].decode(errors="replace")
        if arn not in self.keys:
            raise self._error("InvalidCiphertextException", operation)
        key = self._key(arn, operation)
        rest = blob[2 + size :]
        try:
            return arn, key["aead"].decrypt(rest[:12], rest[12:], self._aad(context))
        except InvalidTag:
            raise self._error("InvalidCiphertextException", operation) from None

    def generate_data_key(self, KeyId: str, KeySpec: str, EncryptionContext: dict) -> dict:
        self._begin("GenerateDataKey")
        assert KeySpec == "AES_256"
        plaintext = os.urandom(32)
        return {
            "KeyId": KeyId,
            "Plaintext": plaintext,
            "CiphertextBlob": self._wrap(KeyId, plaintext, EncryptionContext),
        }

    def encrypt(self, KeyId: str, Plaintext: bytes, EncryptionContext: dict) -> dict:
        self._begin("Encrypt")
        return {"KeyId": KeyId, "CiphertextBlob": self._wrap(KeyId, Plaintext, EncryptionContext)}

    def decrypt(self, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict) -> dict:
        self._begin("Decrypt")
        arn, plaintext = self._unwrap(CiphertextBlob, EncryptionContext, "Decrypt")
        if KeyId != arn:
            raise self._error("IncorrectKeyException", "Decrypt")
        return {"KeyId": arn, "Plaintext": plaintext}

    def re_encrypt(self, **params: Any) -> dict:
        self._begin("ReEncrypt")
        arn, plaintext = self._unwrap(
            params["CiphertextBlob"], params["SourceEncryptionContext"], "ReEncrypt"
        )
        if params.get("SourceKeyId") not in (None, arn):
            raise self._error("IncorrectKeyException", "ReEncrypt")
        destination = params["DestinationKeyId"]
        blob = self._wrap(destination, plaintext, params["DestinationEncryptionContext"])
        return {"KeyId": destination, "SourceKeyId": arn, "CiphertextBlob": blob}


@pytest.fixture
def fake_kms() -> FakeKms:
    return FakeKms()
