"""field_encryption.compat: the Python 3.9 spellings behave as the 3.10 and 3.11 features they
stand for, compared on this interpreter (3.11) with the features themselves."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from field_encryption.compat import a2b_strict, a2b_strict_portable, zip_equal

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _strict(data: str | bytes) -> bytes | type[Exception]:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII
        return type(exc)


def _portable(data: str | bytes) -> bytes | type[Exception]:
    try:
        return a2b_strict_portable(data)
    except ValueError as exc:
        return type(exc)


def _same(data: str | bytes) -> None:
    want, got = _strict(data), _portable(data)
    # a refusal is a refusal: binascii.Error for bad base64 either way, and the
    # portable spelling's UnicodeEncodeError for a non-ASCII str is a ValueError too
    if isinstance(want, bytes) or isinstance(got, bytes):
        assert got == want, data
    else:
        assert issubclass(got, ValueError), data


@pytest.mark.parametrize("data", [
    "", "QQ==", "QUI=", "QUJD", "QUJDRA==", b"QUJD",
    "QQ", "QUI", "Q", "QQ=", "QQ===", "=QQ=", "QQ==QQ==", "QU=D", "QUJD\n", " QUJD",
    "QUJD==", "QUJD=QQ", "=", "==",
    "QUJ*", "QUJD=", "QUJDR===", "QQ==\n", "Ä" * 4, b"QU\x00D", "QUJD" * 100 + "QQ",
])
def test_portable_base64_refuses_what_strict_mode_refuses(data: str | bytes) -> None:
    _same(data)


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=ALPHABET + "=\n -_.", max_size=24))
def test_portable_base64_matches_strict_mode_on_near_base64_text(data: str) -> None:
    _same(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_portable_base64_round_trips_every_encoding(raw: bytes) -> None:
    text = binascii.b2a_base64(raw, newline=False)
    assert a2b_strict_portable(text) == raw == a2b_strict(text)


def test_the_library_uses_the_c_function_where_strict_mode_exists() -> None:
    assert a2b_strict is not a2b_strict_portable
    with pytest.raises(binascii.Error):
        a2b_strict("QQ==QQ==")


def test_zip_equal_pairs_equal_lengths_and_refuses_others_before_the_first_pair() -> None:
    assert list(zip_equal([1, 2], "ab")) == [(1, "a"), (2, "b")]
    assert list(zip_equal((), [])) == []
    for first, second in (([1, 2], "a"), ([1], "ab"), ([], [0])):
        with pytest.raises(ValueError, match="lengths differ"):
            zip_equal(first, second)
