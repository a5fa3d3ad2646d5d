"""The per-field ciphertext envelope (format version 1).

Byte layout, all integers unsigned::

    offset  size  field
    0       1     format version, 0x01
    1       1     algorithm: 0x01 AES-256-GCM (random), 0x02 AES-SIV-512 (deterministic)
    2       16    key id (see :func:`field_encryption.keys.key_id_for`)
    18      12    nonce (AES-256-GCM only; absent for AES-SIV)
    ..      1-4   body length, unsigned LEB128, minimal encoding
    ..      n     body: GCM ciphertext || 16-byte tag, or AES-SIV 16-byte SIV || ciphertext

The envelope is exactly that long: a parser rejects short input, trailing bytes,
unknown versions and algorithms, and non-minimal lengths. The string form is
``"fe1:" + base64(envelope)`` (standard alphabet, padded) for JSON and CSV stores.
"""

from __future__ import annotations

import binascii
from typing import Final, NamedTuple

from field_encryption.compat import a2b_strict
from field_encryption.errors import FormatError

VERSION: Final = 1
ALG_AES_256_GCM: Final = 1
ALG_AES_SIV_512: Final = 2
KEY_ID_LEN: Final = 16
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
STRING_PREFIX: Final = "fe1:"
MAX_BODY_LEN: Final = (1 << 28) - 1  # what four LEB128 bytes can express

ALGORITHM_NAMES: Final = {ALG_AES_256_GCM: "AES-256-GCM", ALG_AES_SIV_512: "AES-SIV-512"}

_HEADER_LEN: Final = 2 + KEY_ID_LEN
# the plaintext always carries at least its one-byte type tag
_MIN_BODY: Final = {ALG_AES_256_GCM: TAG_LEN + 1, ALG_AES_SIV_512: TAG_LEN + 1}
_PREFIX_LEN: Final = len(STRING_PREFIX)


class Envelope(NamedTuple):
    """A parsed envelope; ``nonce`` is empty for AES-SIV."""

    version: int
    algorithm: int
    key_id: bytes
    nonce: bytes
    body: bytes


def encode_length(n: int) -> bytes:
    """Minimal unsigned LEB128 of ``n`` (at most four bytes)."""
    if n < 0x80:
        return bytes((n,))
    if n > MAX_BODY_LEN:
        raise FormatError(f"field ciphertext too large ({n} bytes, at most {MAX_BODY_LEN})")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def header(algorithm: int, key_id: bytes) -> bytes:
    """The fixed first 18 bytes of an envelope."""
    if algorithm not in ALGORITHM_NAMES:
        raise FormatError(f"unknown algorithm 0x{algorithm:02x}")
    if len(key_id) != KEY_ID_LEN:
        raise FormatError(f"key id must be {KEY_ID_LEN} bytes, got {len(key_id)}")
    return bytes((VERSION, algorithm)) + key_id


def build(algorithm: int, key_id: bytes, nonce: bytes, body: bytes) -> bytes:
    """Assemble an envelope (the slow, checked path; the client inlines it)."""
    if algorithm == ALG_AES_256_GCM and len(nonce) != NONCE_LEN:
        raise FormatError(f"AES-256-GCM needs a {NONCE_LEN}-byte nonce, got {len(nonce)}")
    if algorithm == ALG_AES_SIV_512 and nonce:
        raise FormatError("AES-SIV envelopes carry no nonce")
    return header(algorithm, key_id) + nonce + encode_length(len(body)) + body


def parse(data: bytes) -> Envelope:
    """Parse and strictly validate an envelope; raise :class:`FormatError` if malformed."""
    size = len(data)
    if size < _HEADER_LEN + 1:
        raise FormatError(f"field ciphertext truncated ({size} bytes)")
    version = data[0]
    if version != VERSION:
        raise FormatError(f"unknown field ciphertext version {version} (this library reads 1)")
    algorithm = data[1]
    if algorithm == ALG_AES_256_GCM:
        pos = _HEADER_LEN + NONCE_LEN
    elif algorithm == ALG_AES_SIV_512:
        pos = _HEADER_LEN
    else:
        raise FormatError(f"unknown field encryption algorithm 0x{algorithm:02x}")
    if size <= pos:
        raise FormatError(f"field ciphertext truncated ({size} bytes)")
    first = data[pos]
    if first < 0x80:
        body_len = first
        pos += 1
    else:
        body_len, pos = _decode_length(data, pos)
    if body_len < _MIN_BODY[algorithm]:
        raise FormatError(f"field ciphertext body too short ({body_len} bytes)")
    if size != pos + body_len:
        if size < pos + body_len:
            raise FormatError(f"field ciphertext truncated ({size} of {pos + body_len} bytes)")
        raise FormatError(f"{size - pos - body_len} trailing bytes after field ciphertext")
    nonce = data[_HEADER_LEN : _HEADER_LEN + NONCE_LEN] if algorithm == ALG_AES_256_GCM else b""
    return Envelope(version, algorithm, data[2:_HEADER_LEN], nonce, data[pos:])


def _decode_length(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= len(data):
            raise FormatError("field ciphertext truncated inside its length")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise FormatError("field ciphertext length is not minimally encoded")
            return value, pos
    raise FormatError("field ciphertext length longer than four bytes")


def to_string(envelope: bytes) -> str:
    """The prefixed base64 string form of an envelope."""
    return STRING_PREFIX + binascii.b2a_base64(envelope, newline=False).decode("ascii")


def from_string(text: str) -> bytes:
    """Decode the string form back to envelope bytes (not yet parsed)."""
    if not text.startswith(STRING_PREFIX):
        raise FormatError(f"field value is not a field ciphertext (no {STRING_PREFIX!r} prefix)")
    try:
        return a2b_strict(text[_PREFIX_LEN:])
    except (binascii.Error, ValueError):
        raise FormatError("field ciphertext is not valid base64") from None


def is_ciphertext(value: object) -> bool:
    """Whether ``value`` looks like a field ciphertext (string or bytes form); no key needed."""
    if isinstance(value, str):
        if not value.startswith(STRING_PREFIX):
            return False
        try:
            parse(from_string(value))
        except FormatError:
            return False
        return True
    if isinstance(value, (bytes, bytearray)):
        try:
            parse(bytes(value))
        except FormatError:
            return False
        return True
    return False
