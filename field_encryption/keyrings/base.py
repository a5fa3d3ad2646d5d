"""Keyring interface and the wrapped data key record shared by all keyrings."""

from __future__ import annotations

import binascii
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from field_encryption.compat import a2b_strict
from field_encryption.errors import FormatError, UnwrapError

DATA_KEY_LEN = 32
EncryptionContext = Mapping[str, str]


def key_id_for(key: bytes) -> bytes:
    """The 16-byte id of a data key: HMAC-SHA256(key, label), truncated.

    It names the key in every field ciphertext and commits to it: a wrapped key that
    unwraps to different bytes cannot match the id a record claims.
    """
    return hmac.digest(key, b"field-encryption key id v1", "sha256")[:16]


@dataclass(frozen=True)
class EncryptedDataKey:
    """A data key wrapped by one wrapping key (a KMS key or a local key file)."""

    provider: str
    key_id: str
    blob: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "p": self.provider,
            "k": self.key_id,
            "b": binascii.b2a_base64(self.blob, newline=False).decode("ascii"),
        }

    @classmethod
    def from_json(cls, item: Any) -> EncryptedDataKey:
        if (
            type(item) is not dict
            or set(item) != {"p", "k", "b"}
            or not all(isinstance(item[k], str) for k in ("p", "k", "b"))
        ):
            raise FormatError("record header: a wrapped data key must be {p, k, b} strings")
        try:
            blob = a2b_strict(item["b"])
        except (binascii.Error, ValueError):
            raise FormatError("record header: wrapped data key is not valid base64") from None
        return cls(item["p"], item["k"], blob)


class Keyring(ABC):
    """Generates, wraps and unwraps data keys.

    Implementations must never log or put in an exception the plaintext data key.
    """

    @property
    @abstractmethod
    def identity(self) -> str:
        """A stable string naming the wrapping key(s); used as a cache key."""

    @abstractmethod
    def generate(self, context: EncryptionContext) -> tuple[bytes, list[EncryptedDataKey]]:
        """A fresh 32-byte data key and its wrapped copies."""

    @abstractmethod
    def wrap(self, data_key: bytes, context: EncryptionContext) -> list[EncryptedDataKey]:
        """Wrap an existing data key under this keyring's key(s)."""

    @abstractmethod
    def unwrap(self, edks: Sequence[EncryptedDataKey], context: EncryptionContext,
               key_lengths: tuple[int, ...] = (DATA_KEY_LEN,)) -> bytes:
        """Unwrap the first data key this keyring can; raise :class:`UnwrapError` if none.
        A key whose length is not in key_lengths (bytes) is refused: field records use 32-byte
        data keys only; Parquet's key-encryption keys are 16 bytes."""

    def rewrap(
        self,
        edks: Sequence[EncryptedDataKey],
        context: EncryptionContext,
        source: Keyring,
    ) -> list[EncryptedDataKey]:
        """Wrap the data key in ``edks`` (readable by ``source``) under this keyring.

        The default unwraps locally and wraps again; the KMS keyring overrides it with
        ReEncrypt so the plaintext key never leaves KMS.
        """
        return self.wrap(source.unwrap(edks, context), context)

    def children(self) -> Sequence[Keyring]:
        return (self,)


def no_usable_key(identity: str, tried: Sequence[str]) -> UnwrapError:
    detail = "; ".join(tried) if tried else "no wrapped key in the record is for this keyring"
    return UnwrapError(
        f"keyring {identity} could not unwrap the record's data key ({detail}). "
        "Check the key id/alias, the namespace (encryption context) and key permissions."
    )
