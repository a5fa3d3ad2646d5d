"""Envelope encryption of record fields under AWS KMS (or a local key for development).

    from field_encryption import FieldEncryption
    fe = FieldEncryption(key_provider="aws_kms", key_id="arn:aws:kms:...:key/...")
    stored = fe.encrypt_fields(data=record, fields=["ssn", "credit_card", "personal_info"])
    record = fe.decrypt_fields(data=stored)

See docs/field-encryption.md for the formats, key rotation and the ``field-encrypt`` CLI.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

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


def _installed_version() -> str:
    # galaxy.yml states it; the build wrote it into the metadata of the distribution that
    # holds this package: field-encryption on a data node, m7guard in a checkout
    for distribution in ("field-encryption", "m7guard"):
        try:
            return _version(distribution)
        except PackageNotFoundError:
            continue
    return "0+unknown"  # imported from a source tree that was never installed


__version__ = _installed_version()

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
