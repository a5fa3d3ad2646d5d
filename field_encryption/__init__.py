"""Envelope encryption of record fields under AWS KMS (or a local key for development).

    from field_encryption import FieldEncryption
    fe = FieldEncryption(key_provider="aws_kms", key_id="arn:aws:kms:...:key/...")
    stored = fe.encrypt_fields(data=record, fields=["ssn", "credit_card", "personal_info"])
    record = fe.decrypt_fields(data=stored)

See docs/field-encryption.md for the formats, key rotation and the ``field-encrypt`` CLI.
"""

__version__ = "0.1.0"  # of both distributions, m7guard and field-encryption

from field_encryption.cache import CacheLimits, DataKeyCache
from field_encryption.client import FieldEncryption
from field_encryption.errors import (
    ConfigurationError,
    DecryptionError,
    FieldEncryptionError,
    FormatError,
    KeyringError,
    KeyUnavailableError,
    PathError,
    TamperError,
    ThrottledError,
    UnsupportedValueError,
    UnwrapError,
)
from field_encryption.keyrings import (
    AwsKmsKeyring,
    EncryptedDataKey,
    Keyring,
    LocalKeyring,
    MultiKeyring,
    create_key_file,
)
from field_encryption.paths import FieldSpec
from field_encryption.vault import KeyVault

__all__ = [
    "AwsKmsKeyring",
    "CacheLimits",
    "ConfigurationError",
    "DataKeyCache",
    "DecryptionError",
    "EncryptedDataKey",
    "FieldEncryption",
    "FieldEncryptionError",
    "FieldSpec",
    "FormatError",
    "KeyUnavailableError",
    "KeyVault",
    "Keyring",
    "KeyringError",
    "LocalKeyring",
    "MultiKeyring",
    "PathError",
    "TamperError",
    "ThrottledError",
    "UnsupportedValueError",
    "UnwrapError",
    "create_key_file",
]
