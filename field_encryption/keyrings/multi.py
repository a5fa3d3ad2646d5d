"""Multi-keyring: one keyring generates the data key, the others also wrap it.

Typical use: a KMS key in the primary region generates; a KMS key in a second region
wraps the same data key, so records stay readable if the first region is lost.
Unwrapping tries the children in order and succeeds with the first that works.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from field_encryption.errors import ConfigurationError, KeyringError, UnwrapError
from field_encryption.keyrings.base import (
    DATA_KEY_LEN,
    EncryptedDataKey,
    EncryptionContext,
    Keyring,
)

log = logging.getLogger(__name__)


class MultiKeyring(Keyring):
    def __init__(self, generator: Keyring, wrappers: Sequence[Keyring] = ()) -> None:
        if not isinstance(generator, Keyring):
            raise ConfigurationError("MultiKeyring needs a Keyring as its generator")
        self.generator = generator
        self.wrappers = tuple(wrappers)

    @property
    def identity(self) -> str:
        return "multi(" + ",".join(k.identity for k in self.children()) + ")"

    def __repr__(self) -> str:
        return f"MultiKeyring({self.generator!r}, {list(self.wrappers)!r})"

    def children(self) -> Sequence[Keyring]:
        out: list[Keyring] = []
        for keyring in (self.generator, *self.wrappers):
            out.extend(keyring.children())
        return out

    def generate(self, context: EncryptionContext) -> tuple[bytes, list[EncryptedDataKey]]:
        data_key, edks = self.generator.generate(context)
        for wrapper in self.wrappers:
            edks.extend(wrapper.wrap(data_key, context))
        return data_key, edks

    def wrap(self, data_key: bytes, context: EncryptionContext) -> list[EncryptedDataKey]:
        edks: list[EncryptedDataKey] = []
        for keyring in (self.generator, *self.wrappers):
            edks.extend(keyring.wrap(data_key, context))
        return edks

    def unwrap(self, edks: Sequence[EncryptedDataKey], context: EncryptionContext,
               key_lengths: tuple[int, ...] = (DATA_KEY_LEN,)) -> bytes:
        failures: list[str] = []
        for keyring in (self.generator, *self.wrappers):
            try:
                return keyring.unwrap(edks, context, key_lengths)
            except KeyringError as exc:
                log.info("keyring %s could not unwrap: %s", keyring.identity, type(exc).__name__)
                failures.append(f"{keyring.identity}: {type(exc).__name__}")
        raise UnwrapError(
            "no keyring of the multi-keyring could unwrap the record's data key ("
            + "; ".join(failures)
            + "). Check key ids, regions, permissions and the namespace."
        )

    def rewrap(
        self,
        edks: Sequence[EncryptedDataKey],
        context: EncryptionContext,
        source: Keyring,
    ) -> list[EncryptedDataKey]:
        out: list[EncryptedDataKey] = []
        for keyring in (self.generator, *self.wrappers):
            out.extend(keyring.rewrap(edks, context, source))
        return out
