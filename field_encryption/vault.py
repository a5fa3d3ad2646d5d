"""Key vault: long-lived keys for deterministic encryption and blind indexes.

Random-mode fields use short-lived cached data keys. Equality joins and blind-index
search need keys that stay the same across records and runs, so they are derived
from a 32-byte vault root key that a keyring wraps and a small JSON file stores::

    {"format": "field-encryption-key-vault", "version": 1, "primary": "k1",
     "keys": {"k1": {"k": "<base64 key id>", "w": [<wrapped keys, as in a record header>]}}}

From a root key: the AES-SIV key (64 bytes) is HKDF-SHA256(root, info=
"field-encryption deterministic v1"), and the key of blind index ``name`` is
HKDF-SHA256(root, info="field-encryption blind index v1" || lp(name)), 32 bytes, so
every index has its own key. Rotating: ``add_key`` a new root and make it primary;
older roots still decrypt.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from field_encryption.aad import lp
from field_encryption.compat import a2b_strict
from field_encryption.errors import ConfigurationError, FormatError, UnwrapError
from field_encryption.keyrings.base import EncryptedDataKey, Keyring, key_id_for

FILE_FORMAT = "field-encryption-key-vault"


def _context(name: str) -> dict[str, str]:
    return {"field-encryption": "vault-v1", "vault-key": name}


def _hkdf(root: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(root)


@dataclass(frozen=True)
class VaultEntry:
    name: str
    key_id: bytes
    edks: tuple[EncryptedDataKey, ...]


class DeterministicKey:
    __slots__ = ("key_id", "siv")

    def __init__(self, root: bytes) -> None:
        key = _hkdf(root, b"field-encryption deterministic v1", 64)
        self.key_id = key_id_for(key)
        self.siv = AESSIV(key)


class KeyVault:
    """Vault entries plus the unwrapped keys derived from them (after :meth:`open`)."""

    def __init__(self, entries: Mapping[str, VaultEntry], primary: str) -> None:
        if primary not in entries:
            raise ConfigurationError(f"key vault has no key named {primary!r}")
        self.entries = dict(entries)
        self.primary = primary
        self._roots: dict[str, bytes] = {}
        self._deterministic: dict[str, DeterministicKey] = {}
        self._by_key_id: dict[bytes, DeterministicKey] = {}

    # -- files --------------------------------------------------------------------
    @classmethod
    def create(cls, keyring: Keyring, name: str = "k1") -> KeyVault:
        root = os.urandom(32)
        edks = keyring.wrap(root, _context(name))
        vault = cls({name: VaultEntry(name, key_id_for(root), tuple(edks))}, name)
        vault._remember(name, root)
        return vault

    def add_key(self, keyring: Keyring, name: str, make_primary: bool = True) -> None:
        if name in self.entries:
            raise ConfigurationError(f"key vault already has a key named {name!r}")
        root = os.urandom(32)
        self.entries[name] = VaultEntry(
            name, key_id_for(root), tuple(keyring.wrap(root, _context(name)))
        )
        self._remember(name, root)
        if make_primary:
            self.primary = name

    @classmethod
    def load(cls, path: str | os.PathLike[str], keyring: Keyring | None = None) -> KeyVault:
        source = Path(path)
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read key vault {source}: {exc.strerror}") from None
        except ValueError:
            raise ConfigurationError(f"{source} is not a JSON key vault file") from None
        vault = cls.from_json(document, str(source))
        if keyring is not None:
            vault.open(keyring)
        return vault

    @classmethod
    def from_json(cls, document: Any, where: str = "key vault") -> KeyVault:
        try:
            if document["format"] != FILE_FORMAT or document["version"] != 1:
                raise ValueError
            entries = {}
            for name, item in document["keys"].items():
                key_id = a2b_strict(item["k"])
                if len(key_id) != 16:
                    raise ValueError
                edks = tuple(EncryptedDataKey.from_json(e) for e in item["w"])
                entries[name] = VaultEntry(name, key_id, edks)
            return cls(entries, document["primary"])
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, FormatError):
            raise ConfigurationError(
                f"{where} is not a valid field-encryption key vault "
                "(create one with `field-encrypt keys vault-new`)"
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FILE_FORMAT,
            "version": 1,
            "primary": self.primary,
            "keys": {
                e.name: {
                    "k": binascii.b2a_base64(e.key_id, newline=False).decode("ascii"),
                    "w": [x.to_json() for x in e.edks],
                }
                for e in self.entries.values()
            },
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        from field_encryption.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    # -- keys -----------------------------------------------------------------------
    def open(self, keyring: Keyring) -> None:
        """Unwrap every root key with ``keyring`` (one key-service call per entry)."""
        for name, entry in self.entries.items():
            if name in self._roots:
                continue
            root = keyring.unwrap(entry.edks, _context(name))
            if key_id_for(root) != entry.key_id:
                raise UnwrapError(f"key vault entry {name!r}: unwrapped key does not match its id")
            self._remember(name, root)

    def _remember(self, name: str, root: bytes) -> None:
        self._roots[name] = root
        det = DeterministicKey(root)
        self._deterministic[name] = det
        self._by_key_id[det.key_id] = det

    def _root(self, name: str) -> bytes:
        try:
            return self._roots[name]
        except KeyError:
            raise ConfigurationError(
                "the key vault is not open: pass a keyring to KeyVault.load() or call open()"
            ) from None

    def deterministic_key(self) -> DeterministicKey:
        self._root(self.primary)
        return self._deterministic[self.primary]

    def deterministic_key_by_id(self, key_id: bytes) -> DeterministicKey | None:
        return self._by_key_id.get(key_id)

    def blind_index_key(self, index_name: str) -> bytes:
        info = b"field-encryption blind index v1" + lp(index_name.encode("utf-8"))
        return _hkdf(self._root(self.primary), info, 32)

    def rewrapped(self, destination: Keyring, source: Keyring) -> KeyVault:
        """A copy whose root keys are wrapped by ``destination`` (same key bytes)."""
        entries = {
            name: VaultEntry(
                name, e.key_id, tuple(destination.rewrap(e.edks, _context(name), source))
            )
            for name, e in self.entries.items()
        }
        return KeyVault(entries, self.primary)
