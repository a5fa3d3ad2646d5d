"""Type-preserving encoding of a field value into the plaintext that gets encrypted.

The first byte tags the type; the rest is the value:

    0x00 null   0x01 false   0x02 true   (no payload)
    0x03 integer, ASCII decimal          0x04 float, ASCII ``repr`` (nan/inf allowed)
    0x05 string, UTF-8                   0x06 bytes, raw
    0x07 object or array, compact UTF-8 JSON (a whole sub-document)
"""

from __future__ import annotations

import json
from typing import Any, Final

from field_encryption.errors import DecryptionError, UnsupportedValueError

T_NULL: Final = 0
T_FALSE: Final = 1
T_TRUE: Final = 2
T_INT: Final = 3
T_FLOAT: Final = 4
T_STR: Final = 5
T_BYTES: Final = 6
T_JSON: Final = 7

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_loads = json.loads


def encode(value: Any, where: str) -> bytes:
    """Plaintext bytes for ``value``; ``where`` names the field in error messages."""
    kind = type(value)
    if kind is str:
        return b"\x05" + value.encode("utf-8", "surrogatepass")
    if kind is dict or kind is list:
        try:
            return b"\x07" + _dumps(value).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError) as exc:
            raise UnsupportedValueError(
                f"field {where}: sub-document is not JSON-serialisable ({type(exc).__name__}); "
                "only str, int, float, bool, None, dict and list can be nested"
            ) from None
    if kind is int:
        return b"\x03" + str(value).encode("ascii")
    if kind is bool:
        return b"\x02" if value else b"\x01"
    if value is None:
        return b"\x00"
    if kind is float:
        return b"\x04" + repr(value).encode("ascii")
    if kind is bytes or kind is bytearray:
        return b"\x06" + bytes(value)
    if kind is tuple:
        return encode(list(value), where)
    raise UnsupportedValueError(
        f"field {where}: values of type {kind.__name__} cannot be encrypted; "
        "convert it to str, int, float, bool, None, bytes, dict or list first"
    )


def decode(plaintext: bytes, where: str) -> Any:
    """Inverse of :func:`encode`."""
    if not plaintext:
        raise DecryptionError(f"field {where}: decrypted value has no type tag")
    tag = plaintext[0]
    try:
        if tag == T_STR:
            return plaintext[1:].decode("utf-8", "surrogatepass")
        if tag == T_JSON:
            return _loads(plaintext[1:].decode("utf-8", "surrogatepass"))
        if tag == T_INT:
            return int(plaintext[1:].decode("ascii"))
        if tag == T_FLOAT:
            return float(plaintext[1:].decode("ascii"))
        if tag == T_NULL and len(plaintext) == 1:
            return None
        if tag == T_FALSE and len(plaintext) == 1:
            return False
        if tag == T_TRUE and len(plaintext) == 1:
            return True
        if tag == T_BYTES:
            return plaintext[1:]
    except ValueError:
        pass
    raise DecryptionError(f"field {where}: decrypted value has an invalid type encoding")
