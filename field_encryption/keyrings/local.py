"""Local key file keyring: for development, tests and offline use only.

NOT FOR PRODUCTION. The wrapping key sits in a file next to the data; anyone who can
read the file can decrypt everything. Use the aws_kms keyring for real data.

Key file (JSON)::

    {"format": "field-encryption-local-key", "version": 1,
     "warning": "development and offline use only - not for production",
     "key_id": "local:<name>", "key": "<base64 of 32 random bytes>"}

A wrapped data key is ``nonce(12) || AES-256-GCM(file key, data key) || tag(16)`` with
associated data ``"field-encryption local wrap v1"`` followed by the length-prefixed
sorted encryption context.
"""

from __future__ import annotations

import binascii
import json
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from field_encryption.aad import join
from field_encryption.compat import a2b_strict
from field_encryption.errors import ConfigurationError
from field_encryption.keyrings.base import (
    DATA_KEY_LEN,
    EncryptedDataKey,
    EncryptionContext,
    Keyring,
    no_usable_key,
)

log = logging.getLogger(__name__)

PROVIDER = "local"
FILE_FORMAT = "field-encryption-local-key"
WARNING = "development and offline use only - not for production"
_WRAP_LABEL = b"field-encryption local wrap v1"


def _context_aad(context: EncryptionContext) -> bytes:
    parts: list[bytes] = [_WRAP_LABEL]
    for key in sorted(context):
        parts.append(key.encode("utf-8"))
        parts.append(context[key].encode("utf-8"))
    return join(parts)


def create_key_file(path: str | os.PathLike[str], name: str = "dev") -> Path:
    """Write a new random local key file (mode 0600); refuse to overwrite one."""
    target = Path(path)
    document = {
        "format": FILE_FORMAT,
        "version": 1,
        "warning": WARNING,
        "key_id": f"local:{name}",
        "key": binascii.b2a_base64(os.urandom(32), newline=False).decode("ascii"),
    }
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{target} already exists; choose another path") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    return target


class LocalKeyring(Keyring):
    """Wraps data keys with a 256-bit key read from a local file. Not for production."""

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) != 32:
            raise ConfigurationError("a local wrapping key must be 32 bytes")
        self.key_id = key_id
        self._aead = AESGCM(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LocalKeyring:
        source = Path(path)
        try:
            raw = source.read_text(encoding="utf-8")
            mode = source.stat().st_mode
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read local key file {source}: {exc.strerror}"
            ) from None
        try:
            document = json.loads(raw)
            if document.get("format") != FILE_FORMAT or document.get("version") != 1:
                raise ValueError("not a key file")
            key = a2b_strict(document["key"])
            key_id = document["key_id"]
            if not isinstance(key_id, str) or not key_id.startswith("local:"):
                raise ValueError("bad key id")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise ConfigurationError(
                f"{source} is not a field-encryption local key file; create one with "
                "`field-encrypt keys local-new FILE`"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("local key file %s is readable by group/others; chmod 600 it", source)
        log.warning("using local key file %s: %s", source, WARNING)
        return cls(key, key_id)

    @property
    def identity(self) -> str:
        return f"{PROVIDER}:{self.key_id}"

    def __repr__(self) -> str:
        return f"LocalKeyring({self.key_id!r})"

    def generate(self, context: EncryptionContext) -> tuple[bytes, list[EncryptedDataKey]]:
        data_key = os.urandom(DATA_KEY_LEN)
        return data_key, self.wrap(data_key, context)

    def wrap(self, data_key: bytes, context: EncryptionContext) -> list[EncryptedDataKey]:
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, data_key, _context_aad(context))
        return [EncryptedDataKey(PROVIDER, self.key_id, blob)]

    def unwrap(self, edks: Sequence[EncryptedDataKey], context: EncryptionContext,
               key_lengths: tuple[int, ...] = (DATA_KEY_LEN,)) -> bytes:
        tried: list[str] = []
        aad = _context_aad(context)
        for edk in edks:
            if edk.provider != PROVIDER or edk.key_id != self.key_id:
                continue
            if len(edk.blob) - 12 - 16 not in key_lengths:
                tried.append(f"{edk.key_id}: malformed wrapped key")
                continue
            try:
                return self._aead.decrypt(edk.blob[:12], edk.blob[12:], aad)
            except InvalidTag:
                tried.append(f"{edk.key_id}: wrong key or encryption context")
        raise no_usable_key(self.identity, tried)
