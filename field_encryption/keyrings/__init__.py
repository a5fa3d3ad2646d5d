"""Keyrings wrap and unwrap data keys: AWS KMS, a local key file, or several at once."""

from field_encryption.keyrings.aws_kms import AwsKmsKeyring
from field_encryption.keyrings.base import (
    DATA_KEY_LEN,
    EncryptedDataKey,
    EncryptionContext,
    Keyring,
    key_id_for,
)
from field_encryption.keyrings.local import LocalKeyring, create_key_file
from field_encryption.keyrings.multi import MultiKeyring
from field_encryption.keyrings.spec import KeyringSpec

__all__ = [
    "DATA_KEY_LEN",
    "AwsKmsKeyring",
    "EncryptedDataKey",
    "EncryptionContext",
    "Keyring",
    "KeyringSpec",
    "LocalKeyring",
    "MultiKeyring",
    "create_key_file",
    "key_id_for",
]
