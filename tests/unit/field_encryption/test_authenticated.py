"""Format 2 authenticates the whole record by default: header, field list and every field.

Under format 1 the record MAC was optional and the record itself decided whether it was
checked, so each forgery below decrypted, or quietly left a field out. Now every header
entry is bound into every random-mode field (and into the record MAC of a record without
one), the wrapped keys carry their own tag, and format-1 records are read only when the
reader says so.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from field_encryption import FieldEncryption, FieldSpec
from field_encryption.errors import ConfigurationError, FormatError, TamperError

FIELDS = ["ssn", "credit_card", "personal_info.email"]


@pytest.fixture
def encrypted(fe, user_record) -> dict[str, Any]:
    return fe.encrypt_fields(user_record, FIELDS)


def test_round_trip_is_format_2(fe, encrypted, user_record) -> None:
    header = encrypted["_fe"]
    assert header["v"] == 2
    assert len(header["n"]) == 16 and len(header["a"]) == 24  # 12 and 16 bytes, base64
    assert "m" not in header  # the random-mode fields authenticate the header
    assert fe.decrypt_fields(encrypted) == user_record


def test_forged_value_with_its_path_removed_from_the_header(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["ssn"] = "999-99-9999"
    bad["_fe"]["f"].remove('["ssn"]')
    with pytest.raises(TamperError, match="failed authentication"):
        fe.decrypt_fields(bad)


def test_empty_field_list(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["_fe"]["f"] = []
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_dropped_field_and_its_header_entry(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    del bad["credit_card"]
    bad["_fe"]["f"].remove('["credit_card"]')
    with pytest.raises(TamperError, match="failed authentication"):
        fe.decrypt_fields(bad)


def test_dropped_field_only(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    del bad["ssn"]
    with pytest.raises(TamperError, match="dropped"):
        fe.decrypt_fields(bad)


def test_header_from_another_record(fe, user_record, encrypted) -> None:
    other = fe.encrypt_fields({**user_record, "_id": "u-2002", "ssn": "078-05-1120"}, FIELDS)
    assert other["_fe"]["k"] == encrypted["_fe"]["k"]  # same cached data key
    bad = copy.deepcopy(encrypted)
    bad["_fe"] = copy.deepcopy(other["_fe"])
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_replayed_older_ciphertext_of_the_same_field(fe, user_record, encrypted) -> None:
    updated = fe.encrypt_fields({**user_record, "ssn": "078-05-1120"}, FIELDS)
    assert updated["_fe"]["k"] == encrypted["_fe"]["k"]
    replayed = copy.deepcopy(updated)
    replayed["ssn"] = encrypted["ssn"]  # valid for this record id and path, but stale
    with pytest.raises(TamperError, match="ssn failed authentication"):
        fe.decrypt_fields(replayed)


def test_swapped_fields(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    bad["ssn"], bad["credit_card"] = bad["credit_card"], bad["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_removed_record_nonce_or_wrapped_key_tag(fe, encrypted) -> None:
    for entry, message in (("n", "record nonce"), ("a", "wrapped keys")):
        bad = copy.deepcopy(encrypted)
        del bad["_fe"][entry]
        with pytest.raises(TamperError, match=message):
            fe.decrypt_fields(bad)


def test_changed_blind_index(fe, user_record) -> None:
    encrypted = fe.encrypt_fields(user_record, [FieldSpec("ssn", blind_index="digits")])
    bad = copy.deepcopy(encrypted)
    bad["_fe_bidx"]["ssn"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)


def test_a_record_without_random_fields_carries_a_mac(fe, user_record) -> None:
    only_det = [FieldSpec("ssn", deterministic=True, blind_index="digits")]
    encrypted = fe.encrypt_fields(user_record, only_det)
    assert len(encrypted["_fe"]["m"]) == 24
    assert fe.decrypt_fields(encrypted) == user_record
    older = fe.encrypt_fields({**user_record, "ssn": "078-05-1120"}, only_det)
    for name, change in {
        "m removed": lambda r: r["_fe"].pop("m"),
        "m flipped": lambda r: r["_fe"].update(m="AAAA" + r["_fe"]["m"][4:]),
        "f emptied": lambda r: r["_fe"].update(f=[]),
        "index changed": lambda r: r["_fe_bidx"].update(ssn=older["_fe_bidx"]["ssn"]),
        "field replayed": lambda r: r.update(ssn=older["ssn"]),
        "n changed": lambda r: r["_fe"].update(n=older["_fe"]["n"]),
    }.items():
        bad = copy.deepcopy(encrypted)
        change(bad)
        with pytest.raises(TamperError):
            fe.decrypt_fields(bad)
            pytest.fail(name)
    # and a record with random-mode fields may not carry one
    mixed = fe.encrypt_fields(user_record, FIELDS)
    mixed["_fe"]["m"] = encrypted["_fe"]["m"]
    with pytest.raises(FormatError, match="'m'"):
        fe.decrypt_fields(mixed)


def test_downgrade_to_format_1_is_refused(fe, local_keyring, encrypted) -> None:
    for strip in (False, True):
        bad = copy.deepcopy(encrypted)
        bad["_fe"]["v"] = 1
        if strip:  # and what format 1 does not have
            del bad["_fe"]["n"], bad["_fe"]["a"]
        with pytest.raises(TamperError, match="format 1"):
            fe.decrypt_fields(bad)
    # a reader that accepts legacy records reads it as format 1: the fields, bound to the
    # format-2 header, do not authenticate without it
    legacy = FieldEncryption(keyring=local_keyring, namespace="users", allow_legacy_v1=True)
    bad = copy.deepcopy(encrypted)
    bad["_fe"]["v"] = 1
    with pytest.raises(TamperError, match="failed authentication"):
        legacy.decrypt_fields(bad)


def test_the_reader_cannot_be_told_to_skip_the_mac(local_keyring) -> None:
    with pytest.raises(ConfigurationError, match="record_mac=False"):
        FieldEncryption(keyring=local_keyring, namespace="users", record_mac=False)


def test_partial_decryption_authenticates_the_whole_record(fe, encrypted) -> None:
    bad = copy.deepcopy(encrypted)
    del bad["credit_card"]
    bad["_fe"]["f"].remove('["credit_card"]')
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad, fields=["ssn"])


def test_partial_decryption_covering_every_field_is_whole_decryption(fe, user_record) -> None:
    fields = ["ssn", "credit_card", "personal_info", "cards[*].number"]
    encrypted = fe.encrypt_fields(user_record, fields)
    whole = fe.decrypt_fields(encrypted)
    assert whole == user_record
    assert fe.decrypt_fields(encrypted, fields=fields) == whole
    assert (
        fe.decrypt_fields(
            encrypted, fields=["cards[*].number", "ssn", "credit_card", "personal_info"]
        )
        == whole
    )
    partial = fe.decrypt_fields(encrypted, fields=["ssn"])
    assert "_fe" in partial and partial["ssn"] == user_record["ssn"]


# -- legacy format 1 ---------------------------------------------------------------------------
def test_legacy_records_are_read_only_on_request(local_keyring, user_record, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="field_encryption"):
        writer = FieldEncryption(keyring=local_keyring, namespace="users", format_version=1)
    assert "NOT authenticated" in caplog.text
    old = writer.encrypt_fields(user_record, FIELDS)
    assert old["_fe"]["v"] == 1 and "m" not in old["_fe"]
    default = FieldEncryption(keyring=local_keyring, namespace="users")
    with pytest.raises(TamperError, match="allow_legacy_v1"):
        default.decrypt_fields(old)
    legacy = FieldEncryption(keyring=local_keyring, namespace="users", allow_legacy_v1=True)
    assert legacy.decrypt_fields(old) == user_record
    upgraded = legacy.rekey(old, default)
    assert upgraded["_fe"]["v"] == 2 and {"a", "n"} <= set(upgraded["_fe"])
    assert default.decrypt_fields(upgraded) == user_record


def test_legacy_mac_is_checked_when_present(local_keyring, user_record) -> None:
    writer = FieldEncryption(
        keyring=local_keyring, namespace="users", format_version=1, record_mac=True
    )
    old = writer.encrypt_fields(user_record, FIELDS)
    del old["credit_card"]
    old["_fe"]["f"].remove('["credit_card"]')
    legacy = FieldEncryption(keyring=local_keyring, namespace="users", allow_legacy_v1=True)
    with pytest.raises(TamperError, match="MAC"):
        legacy.decrypt_fields(old)


def test_authenticate_without_decrypting(fe, encrypted, local_keyring) -> None:
    no_vault = FieldEncryption(keyring=local_keyring, namespace="users")
    no_vault.authenticate(encrypted)
    bad = copy.deepcopy(encrypted)
    bad["_fe"]["f"] = bad["_fe"]["f"][::-1]
    with pytest.raises(TamperError):
        no_vault.authenticate(bad)
