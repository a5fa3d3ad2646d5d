"""What the library would take from Python 3.10 and later, written for 3.9.

The library runs on data nodes with the distribution's python3: Debian 11 has 3.9
(docs/platforms.md). `zip(..., strict=True)` and `isinstance(x, A | B)` are 3.10, so are type
aliases written `A | B` (they are spelt with `Union`); base64's strict mode is 3.11.
"""

from __future__ import annotations

import binascii
import functools
import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def zip_equal(first: Sequence[A], second: Sequence[B]) -> zip[tuple[A, B]]:
    """`zip(first, second, strict=True)` for two sequences: ValueError when their lengths
    differ, raised before the first pair rather than after the last."""
    if len(first) != len(second):
        raise ValueError(f"zip_equal: lengths differ ({len(first)} and {len(second)})")
    return zip(first, second)


# What `binascii.a2b_base64(data, strict_mode=True)` (3.11) accepts: only the alphabet, in groups
# of four; padding only to complete the last group, or (as CPython allows) after complete groups.
_STRICT_BASE64 = re.compile(
    rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)"
    rb"|(?:[A-Za-z0-9+/]{4})+=*"
    rb"|"
)


def a2b_strict_portable(data: str | bytes) -> bytes:
    """Base64 to bytes, refusing what strict mode refuses (binascii.Error): characters outside
    the alphabet, leading or discontinuous padding, data after padding, a missing pad."""
    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    if _STRICT_BASE64.fullmatch(raw) is None:
        raise binascii.Error("only strict base64 data is allowed")
    return binascii.a2b_base64(raw)


# the C function itself where it exists: records are decoded on the hot path
a2b_strict: Callable[[str | bytes], bytes] = (
    functools.partial(binascii.a2b_base64, strict_mode=True)
    if sys.version_info >= (3, 11) else a2b_strict_portable
)
