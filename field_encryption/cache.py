"""Data-key materials and the caches that bound how long and how much one key is used.

Random 96-bit GCM nonces allow at most 2^32 encryptions per key (NIST SP 800-38D);
the encryption cache retires a data key after ``max_uses`` fields (default 2^24, hard
ceiling 2^30), ``max_bytes`` of plaintext or ``max_age`` seconds, whichever comes
first. Both caches are safe to share between threads.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from field_encryption import aad, envelope
from field_encryption.errors import ConfigurationError
from field_encryption.keyrings.base import EncryptedDataKey, key_id_for

MAX_USES_CEILING = 2**30
RECORD_MAC_KEY_LABEL = b"field-encryption record mac v2"
RECORD_MAC_LABEL = b"fe-record-mac-v2"
WRAPPED_TAG_KEY_LABEL = b"field-encryption wrapped keys v2"
WRAPPED_TAG_LABEL = b"fe-wrapped-keys-v2"
RECORD_MAC_LEN = 16


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces, UTF-8) of a header part."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


class HmacSha256:
    """HMAC-SHA256 (RFC 2104) with its keyed inner and outer states computed once.

    The same function as ``hmac.digest(key, prefix + message, "sha256")``; it exists
    because the record MAC runs once per record and the standard wrapper's per-call cost
    is several times that of the hashing itself (tested equal to :mod:`hmac`).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, _states: tuple[Any, Any] | None = None) -> None:
        if _states is not None:
            self._inner, self._outer = _states
            return
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def extended(self, prefix: bytes) -> HmacSha256:
        """An HMAC whose message always starts with ``prefix``."""
        inner = self._inner.copy()
        inner.update(prefix)
        return HmacSha256(b"", (inner, self._outer))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class DataKeyMaterials:
    """One plaintext data key with what is derived from it once and reused."""

    __slots__ = (
        "_key",
        "_mac_key",
        "_record_mac",
        "aad_prefix",
        "aead",
        "bytes_used",
        "created",
        "edks",
        "gcm_head",
        "header_edks",
        "key_id",
        "key_id_text",
        "namespace",
        "nonce_base",
        "string_head",
        "uses",
        "verified_tag",
        "w_bytes",
    )

    def __init__(self, key: bytes, edks: list[EncryptedDataKey], namespace: str) -> None:
        self._key = key
        self._mac_key: bytes | None = None
        self.key_id = key_id_for(key)
        self.key_id_text = binascii.b2a_base64(self.key_id, newline=False).decode("ascii")
        self.aead = AESGCM(key)
        self.edks = tuple(edks)
        self.header_edks = [e.to_json() for e in edks]
        self.w_bytes = canonical_json(self.header_edks)
        self._record_mac: Any = None
        # the tag 'a' of this object's own wrapped keys, once computed (for a reader: the
        # one its first record carried and that verified)
        self.verified_tag: str | None = None
        self.namespace = namespace
        self.aad_prefix = aad.prefix(envelope.ALG_AES_256_GCM, self.key_id, namespace)
        self.gcm_head = bytes((envelope.VERSION, envelope.ALG_AES_256_GCM)) + self.key_id
        # string form of the head: 18 bytes are exactly 24 base64 characters
        self.string_head = envelope.STRING_PREFIX + binascii.b2a_base64(
            self.gcm_head, newline=False
        ).decode("ascii")
        # GCM nonces: 4 random bytes || 8-byte counter of the field's use index. Uses are
        # reserved under the cache lock, so no two fields under this key share a nonce.
        self.nonce_base = int.from_bytes(os.urandom(4), "big") << 64
        self.created = time.monotonic()
        self.uses = 0
        self.bytes_used = 0

    def __repr__(self) -> str:
        return f"DataKeyMaterials(key_id={self.key_id_text}, uses={self.uses})"

    def mac_key(self) -> bytes:
        """Key of the record MAC, derived from the data key (HMAC-SHA256 as a KDF)."""
        if self._mac_key is None:
            self._mac_key = hmac.digest(self._key, b"field-encryption record mac v1", "sha256")
        return self._mac_key

    def _macs(self) -> tuple[HmacSha256, HmacSha256]:
        macs = self._record_mac
        if macs is None:
            prefix = aad.join((self.namespace.encode("utf-8"), self.key_id))
            record = HmacSha256(hmac.digest(self._key, RECORD_MAC_KEY_LABEL, "sha256"))
            wrapped = HmacSha256(hmac.digest(self._key, WRAPPED_TAG_KEY_LABEL, "sha256"))
            self._record_mac = macs = (
                record.extended(aad.lp(RECORD_MAC_LABEL) + prefix),
                wrapped.extended(aad.lp(WRAPPED_TAG_LABEL) + prefix),
            )
        return macs

    def record_mac(self, message: bytes) -> bytes:
        """Format 2's record MAC (``m``, only for a record without a random-mode field):
        HMAC-SHA256 under a key derived from the data key for this use alone, over
        ``lp(label) || lp(namespace) || lp(data key id) || message``, truncated to 16 bytes.
        """
        return self._macs()[0].digest(message)[:RECORD_MAC_LEN]

    def wrapped_tag(self, w_bytes: bytes | None = None) -> str:
        """Format 2's tag of the wrapped keys (``a``), base64: HMAC-SHA256 under its own
        derived key over ``lp(label) || lp(namespace) || lp(data key id) || canonical JSON
        of w``, truncated to 16 bytes. ``w_bytes`` None: this object's own wrapped keys."""
        if w_bytes is None:
            own = self.verified_tag
            if own is None:
                own = self.verified_tag = self.wrapped_tag(self.w_bytes)
            return own
        tag = self._macs()[1].digest(w_bytes)[:RECORD_MAC_LEN]
        return binascii.b2a_base64(tag, newline=False).decode("ascii")

    def derived_key(self, label: bytes) -> bytes:
        """A key for one purpose (e.g. a file trailer), derived from the data key."""
        return hmac.digest(self._key, label, "sha256")

    def plaintext_key(self) -> bytes:
        """The raw data key (for re-wrapping by a keyring). Handle with care."""
        return self._key


@dataclass(frozen=True)
class CacheLimits:
    max_age: float = 300.0
    max_uses: int = 2**24
    max_bytes: int = 2**36
    max_entries: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.max_uses <= MAX_USES_CEILING:
            raise ConfigurationError(
                f"max_uses must be between 1 and 2^30 ({MAX_USES_CEILING}); random GCM "
                "nonces are safe for at most 2^32 encryptions per key"
            )
        if self.max_age <= 0 or self.max_bytes <= 0 or self.max_entries <= 0:
            raise ConfigurationError("cache max_age, max_bytes and max_entries must be positive")


class DataKeyCache:
    """Encryption-side cache: one current data key per (keyring, namespace)."""

    def __init__(
        self, limits: CacheLimits | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.limits = limits or CacheLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, DataKeyMaterials] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def acquire(
        self,
        cache_key: Hashable,
        fields: int,
        nbytes: int,
        factory: Callable[[], DataKeyMaterials],
    ) -> tuple[DataKeyMaterials, int]:
        """Materials that may encrypt ``fields`` more fields of ``nbytes`` plaintext.

        Returns the materials and the index of the first reserved use (the fields get
        uses ``start .. start + fields - 1``). The uses and bytes are reserved before
        returning, so concurrent callers never share a use or push a key past its
        limits. ``factory`` runs under the lock (one key-service call even when many
        threads miss at once).
        """
        limits = self.limits
        with self._lock:
            current = self._entries.get(cache_key)
            if current is not None and (
                current.uses + fields > limits.max_uses
                or current.bytes_used + nbytes > limits.max_bytes
                or self._clock() - current.created > limits.max_age
            ):
                del self._entries[cache_key]
                current = None
            if current is None:
                if fields > limits.max_uses:
                    raise ConfigurationError(
                        f"one record has {fields} encrypted fields, more than the cache's "
                        f"max_uses ({limits.max_uses})"
                    )
                current = factory()
                current.created = self._clock()
                self._entries[cache_key] = current
                while len(self._entries) > limits.max_entries:
                    self._entries.popitem(last=False)
                self.misses += 1
            else:
                self.hits += 1
            start = current.uses
            current.uses = start + fields
            current.bytes_used += nbytes
            return current, start

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class NoCache:
    """A fresh data key for every record (one key-service call per record)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def acquire(
        self,
        cache_key: Hashable,
        fields: int,
        nbytes: int,
        factory: Callable[[], DataKeyMaterials],
    ) -> tuple[DataKeyMaterials, int]:
        if fields > MAX_USES_CEILING:
            raise ConfigurationError("too many encrypted fields in one record")
        materials = factory()
        materials.uses = fields
        materials.bytes_used = nbytes
        self.misses += 1
        return materials, 0

    def clear(self) -> None:
        return None


class UnwrappedKeyCache:
    """Decryption-side cache of unwrapped data keys, by (namespace, key id)."""

    def __init__(
        self,
        max_entries: int = 1024,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries <= 0 or max_age <= 0:
            raise ConfigurationError("decryption cache max_entries and max_age must be positive")
        self._max_entries = max_entries
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        # read without the lock (a dict read is atomic in CPython); changes take the lock
        self.entries: OrderedDict[Hashable, DataKeyMaterials] = OrderedDict()
        self._entries = self.entries

    def get(self, cache_key: Hashable) -> DataKeyMaterials | None:
        found = self._entries.get(cache_key)
        if found is None:
            return None
        if self._clock() - found.created > self.max_age:
            with self._lock:
                if self._entries.get(cache_key) is found:
                    del self._entries[cache_key]
            return None
        return found

    def put(self, cache_key: Hashable, materials: DataKeyMaterials) -> None:
        with self._lock:
            materials.created = self._clock()
            self._entries[cache_key] = materials
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
