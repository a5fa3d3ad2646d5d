"""The per-field envelope: layout, strict parsing, and fuzzing of the parser."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from field_encryption import envelope
from field_encryption.errors import DecryptionError, FormatError

KEY_ID = bytes(range(16))


def gcm_envelope(body_len: int = 20) -> bytes:
    return envelope.build(envelope.ALG_AES_256_GCM, KEY_ID, os.urandom(12), os.urandom(body_len))


def test_layout_is_as_documented() -> None:
    nonce = bytes(12)
    body = bytes(range(20))
    raw = envelope.build(envelope.ALG_AES_256_GCM, KEY_ID, nonce, body)
    assert raw[0] == 1 and raw[1] == 1
    assert raw[2:18] == KEY_ID
    assert raw[18:30] == nonce
    assert raw[30] == 20
    assert raw[31:] == body
    parsed = envelope.parse(raw)
    assert parsed == envelope.Envelope(1, 1, KEY_ID, nonce, body)


def test_siv_envelope_has_no_nonce() -> None:
    raw = envelope.build(envelope.ALG_AES_SIV_512, KEY_ID, b"", bytes(17))
    assert len(raw) == 2 + 16 + 1 + 17
    assert envelope.parse(raw).nonce == b""


def test_long_body_uses_multibyte_length() -> None:
    body = os.urandom(300)
    raw = envelope.build(envelope.ALG_AES_256_GCM, KEY_ID, bytes(12), body)
    assert raw[30:32] == bytes((0x80 | (300 & 0x7F), 300 >> 7))
    assert envelope.parse(raw).body == body


def test_string_form_round_trips() -> None:
    raw = gcm_envelope()
    text = envelope.to_string(raw)
    assert text.startswith("fe1:")
    assert envelope.from_string(text) == raw
    assert envelope.is_ciphertext(text)
    assert not envelope.is_ciphertext("fe1:AAAA")
    assert not envelope.is_ciphertext("4111 1111 1111 1111")


@pytest.mark.parametrize("nonce_len", [0, 8, 11, 13, 16])
def test_gcm_nonce_must_be_exactly_12_bytes(nonce_len: int) -> None:
    with pytest.raises(FormatError):
        envelope.build(envelope.ALG_AES_256_GCM, KEY_ID, bytes(nonce_len), bytes(20))


def test_eight_byte_nonce_envelope_is_rejected_by_parser() -> None:
    # hand-made envelope with an 8-byte nonce: AESGCM itself would accept such a nonce
    raw = bytes((1, 1)) + KEY_ID + bytes(8) + bytes((20,)) + bytes(20)
    with pytest.raises(FormatError):
        envelope.parse(raw)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: bytes((2,)) + r[1:], "version"),
        (lambda r: bytes((0,)) + r[1:], "version"),
        (lambda r: r[:1] + bytes((3,)) + r[2:], "algorithm"),
        (lambda r: r[:1] + bytes((0xFF,)) + r[2:], "algorithm"),
        (lambda r: r[:-1], "truncated"),
        (lambda r: r[:10], "truncated"),
        (lambda r: r[:30], "truncated"),
        (lambda r: r + b"\x00", "trailing"),
        (lambda r: r + b"junk", "trailing"),
        (lambda r: b"", "truncated"),
        (lambda r: r[:30] + bytes((0x94, 0x00)) + r[31:], "minimal"),
        (lambda r: r[:30] + bytes((5,)) + r[31:36], "too short"),
        (lambda r: r[:30] + bytes((0xFF, 0xFF, 0xFF, 0xFF, 0x01)), "four bytes"),
    ],
)
def test_parser_rejects_malformed_envelopes(mutate, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        envelope.parse(mutate(gcm_envelope()))


@pytest.mark.parametrize(
    "text",
    ["fe1:", "fe1:!!!!", "fe1:AAAA=", "fe1:AQ==\n", "fe2:AAAA", "FE1:AAAA", "fe1:ü"],
)
def test_string_form_rejects_bad_text(text: str) -> None:
    with pytest.raises(FormatError):
        envelope.parse(envelope.from_string(text))


def test_format_error_is_a_decryption_error() -> None:
    assert issubclass(FormatError, DecryptionError)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parser_only_raises_format_error(data: bytes) -> None:
    try:
        parsed = envelope.parse(data)
    except FormatError:
        return
    # whatever parses must re-encode to exactly the same bytes
    assert envelope.build(parsed.algorithm, parsed.key_id, parsed.nonce, parsed.body) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=31, max_size=120), st.integers(0, 119), st.integers(0, 7))
def test_fuzz_bit_flips_of_valid_envelopes(body: bytes, position: int, bit: int) -> None:
    raw = bytearray(envelope.build(envelope.ALG_AES_256_GCM, KEY_ID, body[:12], body[12:]))
    raw[position % len(raw)] ^= 1 << bit
    try:
        parsed = envelope.parse(bytes(raw))
    except FormatError:
        return
    assert parsed.version == 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_string_form_only_raises_format_error(text: str) -> None:
    with contextlib.suppress(FormatError):
        envelope.parse(envelope.from_string("fe1:" + text))


def test_length_prefixed_aad_parts_do_not_collide() -> None:
    from field_encryption.aad import join

    # moto joins encryption-context pairs without a separator; our AAD must not
    assert join([b"a", b"bc"]) != join([b"ab", b"c"])
    assert join([b"", b"x"]) != join([b"x", b""])
    assert join([b"ab"]) != join([b"a", b"b"])
