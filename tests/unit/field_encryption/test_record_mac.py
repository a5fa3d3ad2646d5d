"""The optional record MAC: dropped, swapped and replayed fields are detected."""

from __future__ import annotations

import copy

import pytest

from field_encryption import FieldEncryption
from field_encryption.errors import TamperError


@pytest.fixture
def mac_fe(local_keyring, vault) -> FieldEncryption:
    return FieldEncryption(keyring=local_keyring, namespace="users", record_mac=True, vault=vault)


FIELDS = ["ssn", "credit_card", "personal_info.email"]


def test_record_mac_round_trip(mac_fe, user_record) -> None:
    encrypted = mac_fe.encrypt_fields(user_record, FIELDS)
    assert "m" in encrypted["_fe"]
    assert mac_fe.decrypt_fields(encrypted) == user_record


def test_dropped_field_and_header_entry(mac_fe, user_record) -> None:
    encrypted = mac_fe.encrypt_fields(user_record, FIELDS)
    bad = copy.deepcopy(encrypted)
    del bad["credit_card"]
    bad["_fe"]["f"].remove('["credit_card"]')
    with pytest.raises(TamperError, match="MAC"):
        mac_fe.decrypt_fields(bad)


def test_dropped_field_only(mac_fe, user_record) -> None:
    bad = mac_fe.encrypt_fields(user_record, FIELDS)
    del bad["ssn"]
    with pytest.raises(TamperError, match="dropped"):
        mac_fe.decrypt_fields(bad)


def test_without_mac_a_dropped_field_and_entry_go_unnoticed(fe, user_record) -> None:
    # the reason the MAC exists: per-field AAD alone cannot see this
    bad = fe.encrypt_fields(user_record, FIELDS)
    del bad["credit_card"]
    bad["_fe"]["f"].remove('["credit_card"]')
    assert "credit_card" not in fe.decrypt_fields(bad)


def test_swapped_fields(mac_fe, user_record) -> None:
    bad = mac_fe.encrypt_fields(user_record, FIELDS)
    bad["ssn"], bad["credit_card"] = bad["credit_card"], bad["ssn"]
    with pytest.raises(TamperError):
        mac_fe.decrypt_fields(bad)


def test_replayed_older_ciphertext(mac_fe, user_record) -> None:
    old = mac_fe.encrypt_fields(user_record, FIELDS)
    updated = {**user_record, "ssn": "078-05-1120"}
    new = mac_fe.encrypt_fields(updated, FIELDS)
    assert old["_fe"]["k"] == new["_fe"]["k"]
    replayed = copy.deepcopy(new)
    replayed["ssn"] = old["ssn"]  # valid for this record id and path, but stale
    with pytest.raises(TamperError, match="MAC"):
        mac_fe.decrypt_fields(replayed)


def test_replay_passes_without_mac(fe, user_record) -> None:
    old = fe.encrypt_fields(user_record, FIELDS)
    new = fe.encrypt_fields({**user_record, "ssn": "078-05-1120"}, FIELDS)
    new["ssn"] = old["ssn"]
    assert fe.decrypt_fields(new)["ssn"] == "123-45-6789"


def test_removed_mac_is_detected_when_required(mac_fe, user_record) -> None:
    bad = mac_fe.encrypt_fields(user_record, FIELDS)
    del bad["_fe"]["m"]
    with pytest.raises(TamperError, match="required"):
        mac_fe.decrypt_fields(bad)


def test_changed_mac_or_blind_index(local_keyring, vault, user_record) -> None:
    from field_encryption import FieldSpec

    fe = FieldEncryption(keyring=local_keyring, namespace="users", record_mac=True, vault=vault)
    encrypted = fe.encrypt_fields(user_record, [FieldSpec("ssn", blind_index="digits")])
    bad = copy.deepcopy(encrypted)
    bad["_fe_bidx"]["ssn"] = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)
    bad = copy.deepcopy(encrypted)
    bad["_fe"]["m"] = "AAAA" + bad["_fe"]["m"][4:]
    with pytest.raises(TamperError):
        fe.decrypt_fields(bad)
