"""FAKE import path: the seed's `from mapr.security import FieldEncryption` resolves to
m7guard's real implementation. Tests only; m7guard ships no `mapr` package."""

from field_encryption import FieldEncryption

__all__ = ["FieldEncryption"]
