"""Rotation: rewrap changes only the wrapped data keys; rekey replaces the data keys."""

from __future__ import annotations

import copy
import os

import pytest

from field_encryption import FieldEncryption, FieldSpec, LocalKeyring, MultiKeyring
from field_encryption.errors import DecryptionError, UnwrapError

FIELDS = ["ssn", "credit_card", "personal_info"]


def test_rewrap_changes_only_wrapped_keys(local_keyring, user_record) -> None:
    new_ring = LocalKeyring(os.urandom(32), "local:new")
    fe = FieldEncryption(keyring=local_keyring, namespace="users", record_mac=True)
    encrypted = fe.encrypt_fields(user_record, FIELDS)
    rewrapped = fe.rewrap(encrypted, new_ring)
    before, after = copy.deepcopy(encrypted), copy.deepcopy(rewrapped)
    assert before["_fe"].pop("w") != after["_fe"].pop("w")
    assert before == after  # every field, key id, path list and MAC unchanged
    new_reader = FieldEncryption(keyring=new_ring, namespace="users", record_mac=True)
    assert new_reader.decrypt_fields(rewrapped) == user_record
    with pytest.raises(UnwrapError):
        FieldEncryption(keyring=new_ring, namespace="users").decrypt_fields(encrypted)


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
    target = FieldEncryption(keyring=other_ring, namespace="users", vault=vault, record_mac=True)
    old = fe.encrypt_fields(
        user_record, [*FIELDS, FieldSpec("cards[0].number", blind_index="digits")]
    )
    new = fe.rekey(old, target)
    assert new["_fe"]["w"][0]["k"] == "local:other" and "m" in new["_fe"]
    assert new["_fe_bidx"] == old["_fe_bidx"]
    assert target.decrypt_fields(new) == user_record
    with pytest.raises(UnwrapError):
        fe.decrypt_fields(new)


def test_rekey_of_records_without_ids(fe) -> None:
    old = fe.encrypt_fields({"ssn": "1", "n": {"x": [1, 2]}}, ["ssn", "n.x[*]"])
    new = fe.rekey(old)
    assert new["_fe"]["r"] != old["_fe"]["r"]
    assert fe.decrypt_fields(new) == {"ssn": "1", "n": {"x": [1, 2]}}
