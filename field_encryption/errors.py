"""Typed exceptions raised by field_encryption.

Every error derives from :class:`FieldEncryptionError`. Messages name the record,
field path, key id or option involved and say what to do; they never contain key
material or plaintext field values.
"""

from __future__ import annotations


class FieldEncryptionError(Exception):
    """Base class of every error raised by this package."""


class ConfigurationError(FieldEncryptionError):
    """The library or the CLI was set up with invalid or conflicting options."""


class PathError(FieldEncryptionError):
    """A field path is malformed, matches nothing, or selects overlapping fields."""


class UnsupportedValueError(FieldEncryptionError):
    """A selected value has a type that cannot be encrypted with its type preserved."""


class DecryptionError(FieldEncryptionError):
    """A ciphertext could not be decrypted: wrong key or context, or modified data."""


class FormatError(DecryptionError):
    """A ciphertext or record header is malformed (unknown version, truncated, ...)."""


class TamperError(DecryptionError):
    """Authentication failed: a field was modified, moved, dropped or replayed."""


class KeyringError(FieldEncryptionError):
    """A keyring could not generate, wrap, unwrap or re-encrypt a data key."""


class KeyUnavailableError(KeyringError):
    """The wrapping key is disabled, pending deletion, missing or not allowed."""


class ThrottledError(KeyringError):
    """The key service kept throttling the request after every retry."""


class UnwrapError(KeyringError, DecryptionError):
    """No keyring could unwrap a record's data key (wrong key, context or namespace)."""


class UsageError(FieldEncryptionError):
    """A command line that cannot be run as given: a missing, conflicting or unknown option."""
