"""The file trailer: what makes a whole JSON Lines or CSV file tamper-evident.

Every record of a format-2 file is authenticated on its own (the record MAC), but a
record MAC cannot tell that records were dropped, duplicated, moved, that the file was
cut at a record boundary, or spliced from two files. ``field-encrypt`` therefore ends
every file it writes with a trailer: a record whose only content is the header field
holding ``{"trailer": {...}}`` (in CSV, a row whose cells are empty but ``_fe``)::

    {"_fe": {"trailer": {"v": 1, "c": 10000, "h": "<base64 32 bytes>",
                         "k": "<base64 data key id>", "w": [...], "t": "<base64 16 bytes>"}}}

- ``h``: SHA-256 over ``lp("fe-file-v1") || k_1 || n_1 || ... || k_c || n_c``, where
  ``k_i`` and ``n_i`` are the i-th record's data key id (16 bytes) and record nonce (12
  bytes), in file order (no key or namespace needed: ``verify`` without a keyring checks
  it too);
- ``t``: HMAC-SHA256 under a key derived from the data key ``k`` (wrapped in ``w``),
  over ``lp("fe-file-trailer-v1") || lp(namespace) || u64 c || h``, truncated to 16 bytes.

A record nonce is unique under its data key for every record ever encrypted, and it is
bound into every field of its record, so the chain names each record; the count and the
chain together pin the order and the number of records. The digest is streamed: memory
stays constant.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from field_encryption import aad
from field_encryption.compat import a2b_strict
from field_encryption.errors import FormatError, TamperError

TRAILER_KEY = "trailer"
TRAILER_VERSION = 1
FILE_LABEL = b"fe-file-v1"
TRAILER_LABEL = b"fe-file-trailer-v1"
TRAILER_KEY_LABEL = b"field-encryption file trailer v1"
TRAILER_FIELDS = frozenset({"v", "c", "h", "k", "w", "t"})


def trailer_of(record: Mapping[str, Any], header_field: str) -> dict[str, Any] | None:
    """The trailer a record holds, or None for an ordinary record.

    A trailer record carries nothing but the trailer: any other non-empty value (an
    ordinary record dressed up as a trailer, or a trailer with data added) is refused.
    """
    header = record.get(header_field)
    if type(header) is not dict or TRAILER_KEY not in header:
        return None
    trailer = header[TRAILER_KEY]
    if len(header) != 1 or type(trailer) is not dict:
        raise TamperError("a record header mixes a file trailer with other entries")
    for key, value in record.items():
        if key != header_field and value not in ("", None):
            raise TamperError(f"the file trailer record also carries a value in {key!r}")
    if not TRAILER_FIELDS.issuperset(trailer) or trailer.get("v") != TRAILER_VERSION:
        raise FormatError(
            f"file trailer: unknown entries or version {trailer.get('v')!r} (this library "
            f"reads version {TRAILER_VERSION})"
        )
    return trailer


class FileDigest:
    """The running chain of record MACs of one file (``h`` above)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(aad.lp(FILE_LABEL))
        self.count = 0

    def add(self, record: Mapping[str, Any], header_field: str) -> None:
        """Chain a format-2 record's data key id and record nonce (the record itself is
        authenticated when it is read)."""
        header = record.get(header_field)
        key_text = header.get("k") if type(header) is dict else None
        nonce_text = header.get("n") if type(header) is dict else None
        if type(key_text) is not str or type(nonce_text) is not str:
            raise TamperError(
                "record has no data key id and record nonce to chain into the file trailer "
                "(not a format-2 record)"
            )
        try:
            key_id = a2b_strict(key_text)
            nonce = a2b_strict(nonce_text)
        except (binascii.Error, ValueError):
            raise FormatError("record header: 'k' or 'n' is not valid base64") from None
        if len(key_id) != 16 or len(nonce) != 12:
            raise FormatError("record header: 'k' must be 16 bytes and 'n' 12")
        self._hash.update(key_id + nonce)
        self.count += 1

    def digest(self) -> bytes:
        return self._hash.digest()


def tag_message(namespace: str, count: int, digest: bytes) -> bytes:
    """What the trailer tag ``t`` covers."""
    return aad.join((TRAILER_LABEL, namespace.encode("utf-8"))) + count.to_bytes(8, "big") + digest


def check_digest(trailer: Mapping[str, Any], count: int, digest: bytes) -> None:
    """Compare a trailer's record count and chain with what was read (no key needed)."""
    claimed = trailer.get("c")
    if type(claimed) is not int or claimed < 0:
        raise FormatError("file trailer: 'c' (record count) is not a count")
    if claimed != count:
        what = "records are missing" if claimed > count else "records were added"
        raise TamperError(
            f"file trailer: the file holds {count} records but its trailer counts {claimed} "
            f"({what}: truncated, spliced or edited)"
        )
    try:
        chained = a2b_strict(trailer.get("h") or "")
    except (binascii.Error, ValueError, TypeError):
        raise FormatError("file trailer: 'h' is not valid base64") from None
    if chained != digest:
        raise TamperError(
            "file trailer: the chain of record MACs differs from the records read (records "
            "dropped, duplicated, reordered or taken from another file)"
        )
