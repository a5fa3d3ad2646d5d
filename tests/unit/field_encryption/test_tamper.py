"""Tamper battery: every modification, move or wrong context raises a typed error."""

from __future__ import annotations

import binascii
import copy
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from field_encryption import FieldEncryption, LocalKeyring
from field_encryption.errors import (
    DecryptionError,
    FormatError,
    TamperError,
    UnwrapError,
)

FIELDS = ["ssn", "credit_card", "personal_info", "cards[*].number"]


@pytest.fixture
def encrypted(fe, user_record) -> dict[str, Any]:
    return fe.encrypt_fields(user_record, FIELDS)


def flip(text: str, byte: int, bit: int = 0) -> str:
    raw = bytearray(binascii.a2b_base64(text[4:]))
    raw[byte % len(raw)] ^= 1 << bit
    return "fe1:" + binascii.b2a_base64(bytes(raw), newline=False).decode()


def test_untouched_record_decrypts(fe, encrypted, user_record) -> None:
    assert fe.decrypt_fields(encrypted) == user_record


@pytest.mark.parametrize("byte", [0, 1, 2, 17, 18, 29, 30, 31, 40, -1])
def test_bit_flip_anywhere_in_a_field(fe, encrypted, byte: int) -> None:
    bad = copy.deepcopy(encrypted)
    bad["ssn"] = flip(bad["ssn"], byte)
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(bad)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 7), st.sampled_from(["ssn", "credit_card"]))
def test_bit_flip_property(shared_keyring, byte: int, bit: int, field: str) -> None:
    fe = FieldEncryption(keyring=shared_keyring, namespace="users")
    record = {"_id": "p", "ssn": "123-45-6789", "credit_card": "4111111111111111"}
    bad = fe.encrypt_fields(record, ["ssn", "credit_card"])
    bad[field] = flip(bad[field], byte, bit)
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(bad)


@pytest.mark.parametrize("keep", [0, 4, 10, 30, 40, -1])
def test_truncated_field(fe, encrypted, keep: int) -> None:
    bad = copy.deepcopy(encrypted)
    raw = binascii.a2b_base64(bad["credit_card"][4:])
    bad["credit_card"] = "fe1:" + binascii.b2a_base64(raw[:keep], newline=False).decode()
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(bad)


def test_trailing_bytes(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    raw = binascii.a2b_base64(bad["ssn"][4:]) + b"\x00"
    bad["ssn"] = "fe1:" + binascii.b2a_base64(raw, newline=False).decode()
    # the record MAC (checked first) or the strict envelope parser refuses it
    with pytest.raises((FormatError, TamperError)):
        fe.decrypt_fields(bad)


def test_swap_between_fields(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["ssn"], bad["credit_card"] = bad["credit_card"], bad["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_swap_between_list_elements(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    cards = bad["cards"]
    cards[0]["number"], cards[1]["number"] = cards[1]["number"], cards[0]["number"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_move_between_records(fe, user_record) -> None:
    other = {**user_record, "_id": "u-2002", "ssn": "987-65-4320"}
    a = fe.encrypt_fields(user_record, FIELDS)
    b = fe.encrypt_fields(other, FIELDS)
    assert a["_fe"]["k"] == b["_fe"]["k"]  # same cached data key: only the AAD differs
    a["ssn"] = b["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(a)


def test_changed_record_id(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["_id"] = "u-9999"
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_move_between_records_without_ids(fe) -> None:
    a = fe.encrypt_fields({"ssn": "1"}, ["ssn"])
    b = fe.encrypt_fields({"ssn": "2"}, ["ssn"])
    a["ssn"] = b["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(a)


def test_move_between_tables(local_keyring, user_record) -> None:
    users = FieldEncryption(keyring=local_keyring, namespace="users")
    orders = FieldEncryption(keyring=local_keyring, namespace="orders")
    encrypted = users.encrypt_fields(user_record, ["ssn"])
    with pytest.raises(DecryptionError):
        orders.decrypt_fields(encrypted)


def test_field_from_another_table_with_a_valid_header(local_keyring, user_record) -> None:
    users = FieldEncryption(keyring=local_keyring, namespace="users")
    orders = FieldEncryption(keyring=local_keyring, namespace="orders")
    in_users = users.encrypt_fields(user_record, ["ssn"])
    in_orders = orders.encrypt_fields(user_record, ["ssn"])
    in_orders["ssn"] = in_users["ssn"]
    with pytest.raises(TamperError):
        orders.decrypt_fields(in_orders)


def test_wrong_key(user_record, tmp_path, encrypted) -> None:
    stranger = FieldEncryption(keyring=LocalKeyring(os.urandom(32), "local:dev"), namespace="users")
    with pytest.raises(UnwrapError):
        stranger.decrypt_fields(encrypted)
    assert issubclass(UnwrapError, DecryptionError)


def test_header_pointing_at_another_data_key(fe, local_keyring, user_record) -> None:
    a = fe.encrypt_fields(user_record, ["ssn"])
    fe.cache.clear()
    b = fe.encrypt_fields(user_record, ["ssn"])
    assert a["_fe"]["k"] != b["_fe"]["k"]
    mixed = copy.deepcopy(a)
    mixed["_fe"]["w"] = b["_fe"]["w"]  # wrapped key of b under a's key id
    fresh = FieldEncryption(keyring=local_keyring, namespace="users")
    with pytest.raises(TamperError, match="does not match"):
        fresh.decrypt_fields(mixed)
    moved = copy.deepcopy(a)
    moved["ssn"] = b["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(moved)


@pytest.mark.parametrize(
    "damage",
    [
        lambda h: h.pop("k"),
        lambda h: h.pop("w"),
        lambda h: h.update(v=3),
        lambda h: h.update(v=True),
        lambda h: h.update(v="2"),
        lambda h: h.update(k="not base64!"),
        lambda h: h.update(k="AAAA"),
        lambda h: h.update(w=[{"p": "local"}]),
        lambda h: h.update(w="x"),
        lambda h: h.update(f=["ssn"]),
        lambda h: h.update(f=['["ssn"]', '["ssn"]']),
        lambda h: h.update(f='["ssn"]'),
        lambda h: h.update(extra=1),
        lambda h: h.update(r="!!"),
        lambda h: h.update(s={}),
        lambda h: h.update(s=None),
    ],
)
def test_damaged_header(fe, encrypted, damage) -> None:
    bad = copy.deepcopy(encrypted)
    damage(bad["_fe"])
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(bad)


def test_missing_header(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    del bad["_fe"]
    with pytest.raises(FormatError):
        fe.decrypt_fields(bad)


def test_plaintext_in_a_listed_field(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["ssn"] = "123-45-6789"
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)
    bad["ssn"] = 123456789
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12)),
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c, max_size=3)
    ),
    max_leaves=8,
)


_ABSENT = object()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["v", "k", "w", "f", "r", "s", "m", "x"]), json_junk)
def test_fuzz_header_entries_any_change_fails(shared_keyring, key: str, junk) -> None:
    fe = FieldEncryption(keyring=shared_keyring, namespace="users")
    record = {"_id": "p", "ssn": "123-45-6789", "card": {"n": "4111111111111111"}}
    encrypted = fe.encrypt_fields(record, ["ssn", "card.n"])
    original = encrypted["_fe"].get(key, _ABSENT)
    encrypted["_fe"][key] = junk
    if junk == original and type(junk) is type(original):
        assert fe.decrypt_fields(encrypted) == record
        return
    # format 2: no change to the header may yield a record, not even one with a field
    # left encrypted (format 1 allowed that)
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(encrypted)


@settings(max_examples=200, deadline=None)
@given(json_junk, st.sampled_from(["ssn", "card"]))
def test_fuzz_field_values_only_raise_typed_errors(shared_keyring, junk, field: str) -> None:
    fe = FieldEncryption(keyring=shared_keyring, namespace="users")
    record = {"_id": "p", "ssn": "123-45-6789", "card": {"n": "4111111111111111"}}
    encrypted = fe.encrypt_fields(record, ["ssn", "card.n"])
    encrypted[field] = junk
    with pytest.raises(DecryptionError):
        fe.decrypt_fields(encrypted)
