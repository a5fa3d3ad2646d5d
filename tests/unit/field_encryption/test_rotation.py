"""Rotation: rewrap changes only the wrapped data keys; rekey replaces the data keys."""

from __future__ import annotations

import binascii
import copy
import os

import pytest

from field_encryption import FieldEncryption, FieldSpec, LocalKeyring, MultiKeyring
from field_encryption.errors import DecryptionError, FormatError, TamperError, UnwrapError

FIELDS = ["ssn", "credit_card", "personal_info"]


def test_rewrap_changes_only_wrapped_keys_and_their_tag(local_keyring, user_record) -> None:
    new_ring = LocalKeyring(os.urandom(32), "local:new")
    fe = FieldEncryption(keyring=local_keyring, namespace="users")
    encrypted = fe.encrypt_fields(user_record, FIELDS)
    rewrapped = fe.rewrap(encrypted, new_ring)
    before, after = copy.deepcopy(encrypted), copy.deepcopy(rewrapped)
    assert before["_fe"].pop("w") != after["_fe"].pop("w")
    # the tag 'a' covers the wrapped keys, so it is renewed; nothing else changes
    assert before["_fe"].pop("a") != after["_fe"].pop("a")
    assert before == after  # every field, key id, record nonce and path list unchanged
    new_reader = FieldEncryption(keyring=new_ring, namespace="users")
    assert new_reader.decrypt_fields(rewrapped) == user_record
    with pytest.raises(UnwrapError):
        FieldEncryption(keyring=new_ring, namespace="users").decrypt_fields(encrypted)


def test_rewrap_authenticates_each_record(local_keyring, user_record) -> None:
    fe = FieldEncryption(keyring=local_keyring, namespace="users")
    bad = fe.encrypt_fields(user_record, FIELDS)
    bad["ssn"] = "999-99-9999"
    bad["_fe"]["f"].remove('["ssn"]')
    with pytest.raises(TamperError):
        fe.rewrap(bad, LocalKeyring(os.urandom(32), "local:new"))


def test_rewrap_never_hands_one_records_keys_to_another(local_keyring, user_record) -> None:
    """Two records share a data key; the second one's wrapped key is damaged. The memo
    of the first rewrap must not paper over it: the second record fails on its own."""
    fe = FieldEncryption(keyring=local_keyring, namespace="users")
    first = fe.encrypt_fields(user_record, FIELDS)
    second = copy.deepcopy(fe.encrypt_fields({**user_record, "_id": "u-2002"}, FIELDS))
    assert first["_fe"]["k"] == second["_fe"]["k"]
    blob = bytearray(binascii.a2b_base64(second["_fe"]["w"][0]["b"]))
    blob[-1] ^= 1
    second["_fe"]["w"][0]["b"] = binascii.b2a_base64(bytes(blob), newline=False).decode()
    new_ring = LocalKeyring(os.urandom(32), "local:new")
    memo: dict = {}
    rewrapped = fe.rewrap(first, new_ring, memo)
    with pytest.raises(TamperError):
        fe.rewrap(second, new_ring, memo)
    assert len(memo) == 1
    # nor does a record that is untouched but for its wrapped keys pick up another's
    third = fe.encrypt_fields({**user_record, "_id": "u-3003"}, FIELDS)
    third["_fe"]["w"] = copy.deepcopy(rewrapped["_fe"]["w"])
    with pytest.raises(DecryptionError):
        fe.rewrap(third, new_ring, memo)


def test_rewrap_refuses_legacy_records(local_keyring, user_record) -> None:
    old = FieldEncryption(keyring=local_keyring, namespace="users", format_version=1)
    legacy = old.encrypt_fields(user_record, FIELDS)
    reader = FieldEncryption(keyring=local_keyring, namespace="users", allow_legacy_v1=True)
    with pytest.raises(FormatError, match="rekey"):
        reader.rewrap(legacy, LocalKeyring(os.urandom(32), "local:new"))


def test_old_records_still_decrypt_after_rewrap_to_multi(local_keyring, user_record) -> None:
    dr = LocalKeyring(os.urandom(32), "local:dr")
    fe = FieldEncryption(keyring=local_keyring, namespace="users")
    old = fe.encrypt_fields(user_record, FIELDS)
    multi = MultiKeyring(local_keyring, [dr])
    rewrapped = fe.rewrap(old, multi)
    assert len(rewrapped["_fe"]["w"]) == 2
    assert fe.decrypt_fields(old) == user_record  # untouched records keep working
    assert FieldEncryption(keyring=dr, namespace="users").decrypt_fields(rewrapped) == user_record


def test_rekey_produces_new_data_keys(fe, local_keyring, vault, user_record) -> None:
    specs = [FieldSpec("ssn", deterministic=True), "credit_card", "personal_info"]
    old = fe.encrypt_fields(user_record, specs)
    new = fe.rekey(old)
    assert new["_fe"]["k"] != old["_fe"]["k"]
    assert new["credit_card"] != old["credit_card"]
    assert fe.decrypt_fields(new) == user_record
    # the old data key cannot read the new record: pair the new fields with the old header
    franken = copy.deepcopy(new)
    franken["_fe"] = old["_fe"]
    with pytest.raises(DecryptionError):
        fresh = FieldEncryption(keyring=local_keyring, namespace="users", vault=vault)
        fresh.decrypt_fields(franken)


def test_rekey_to_another_keyring(fe, vault, user_record) -> None:
    other_ring = LocalKeyring(os.urandom(32), "local:other")
    target = FieldEncryption(keyring=other_ring, namespace="users", vault=vault)
    old = fe.encrypt_fields(
        user_record, [*FIELDS, FieldSpec("cards[0].number", blind_index="digits")]
    )
    new = fe.rekey(old, target)
    assert new["_fe"]["w"][0]["k"] == "local:other" and {"a", "n"} <= set(new["_fe"])
    assert new["_fe_bidx"] == old["_fe_bidx"]
    assert target.decrypt_fields(new) == user_record
    with pytest.raises(UnwrapError):
        fe.decrypt_fields(new)


def test_rekey_of_records_without_ids(fe) -> None:
    old = fe.encrypt_fields({"ssn": "1", "n": {"x": [1, 2]}}, ["ssn", "n.x[*]"])
    new = fe.rekey(old)
    assert new["_fe"]["r"] != old["_fe"]["r"]
    assert fe.decrypt_fields(new) == {"ssn": "1", "n": {"x": [1, 2]}}
