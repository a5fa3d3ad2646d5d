"""Blind indexes: a keyed HMAC of a normalised value, for equality search.

``index = base64(HMAC-SHA256(index key, "fe-bidx-v1" || lp(normalised UTF-8))[:16])``

The index key is derived per index name from the key vault (see :mod:`vault`), so
different fields never share an index key and the field's encryption key is never
used. Normalisers: ``text`` (NFKC, case-folded, whitespace collapsed), ``digits``
(only the digits: card numbers, SSNs, phone numbers) and ``exact``.
"""

from __future__ import annotations

import binascii
import hmac
import re
import unicodedata
from typing import Any

from field_encryption.aad import lp
from field_encryption.errors import UnsupportedValueError

INDEX_BYTES = 16
_SPACE = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"[^0-9]")


def normalise(value: Any, normaliser: str, where: str) -> bytes:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
        raise UnsupportedValueError(
            f"field {where}: a blind index needs a string or integer value, "
            f"not {type(value).__name__}"
        )
    text = str(value)
    if normaliser == "text":
        text = _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    elif normaliser == "digits":
        text = _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", text))
    return text.encode("utf-8", "surrogatepass")


def compute(key: bytes, value: Any, normaliser: str, where: str) -> str:
    digest = hmac.digest(key, b"fe-bidx-v1" + lp(normalise(value, normaliser, where)), "sha256")
    return binascii.b2a_base64(digest[:INDEX_BYTES], newline=False).decode("ascii")


def index_name(display_path: str) -> str:
    """Default name of a field's index: the path with every non-word character as ``_``."""
    return re.sub(r"\W", "_", display_path, flags=re.ASCII)
