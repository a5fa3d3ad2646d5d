"""Deterministic (AES-SIV) fields for joins and blind indexes for equality search."""

from __future__ import annotations

import pytest

from field_encryption import FieldEncryption, FieldSpec, KeyVault
from field_encryption.errors import ConfigurationError, DecryptionError, TamperError


def test_deterministic_equal_values_equal_ciphertexts(fe) -> None:
    spec = [FieldSpec("ssn", deterministic=True)]
    a = fe.encrypt_fields({"_id": "1", "ssn": "123-45-6789"}, spec)
    b = fe.encrypt_fields({"_id": "2", "ssn": "123-45-6789"}, spec)
    c = fe.encrypt_fields({"_id": "3", "ssn": "987-65-4320"}, spec)
    assert a["ssn"] == b["ssn"] != c["ssn"]
    assert a["ssn"] == fe.encrypt_deterministic("ssn", "123-45-6789")
    assert fe.decrypt_fields(b) == {"_id": "2", "ssn": "123-45-6789"}


def test_deterministic_is_bound_to_path_and_table(fe, local_keyring, vault) -> None:
    spec = [FieldSpec("ssn", deterministic=True), FieldSpec("tax_id", deterministic=True)]
    record = {"_id": "1", "ssn": "x", "tax_id": "x"}
    encrypted = fe.encrypt_fields(record, spec)
    assert encrypted["ssn"] != encrypted["tax_id"]
    encrypted["ssn"], encrypted["tax_id"] = encrypted["tax_id"], encrypted["ssn"]
    with pytest.raises(TamperError):
        fe.decrypt_fields(encrypted)
    other_table = FieldEncryption(keyring=local_keyring, namespace="orders", vault=vault)
    assert other_table.encrypt_deterministic("ssn", "x") != fe.encrypt_deterministic("ssn", "x")


def test_join_scope_matches_across_tables(local_keyring, vault) -> None:
    users = FieldEncryption(keyring=local_keyring, namespace="users", vault=vault)
    orders = FieldEncryption(keyring=local_keyring, namespace="orders", vault=vault)
    u = users.encrypt_fields(
        {"_id": "1", "ssn": "123"}, [FieldSpec("ssn", deterministic=True, join_scope="person")]
    )
    o = orders.encrypt_fields(
        {"_id": "9", "customer": {"ssn": "123"}},
        [FieldSpec("customer.ssn", deterministic=True, join_scope="person")],
    )
    assert u["ssn"] == o["customer"]["ssn"]
    assert u["_fe"]["s"] == {'["ssn"]': "person"}
    assert orders.decrypt_fields(o) == {"_id": "9", "customer": {"ssn": "123"}}


def test_deterministic_needs_the_vault(local_keyring, vault) -> None:
    no_vault = FieldEncryption(keyring=local_keyring, namespace="users")
    with pytest.raises(ConfigurationError, match="vault"):
        no_vault.encrypt_fields({"_id": "1", "ssn": "1"}, [FieldSpec("ssn", deterministic=True)])
    with_vault = FieldEncryption(keyring=local_keyring, namespace="users", vault=vault)
    encrypted = with_vault.encrypt_fields(
        {"_id": "1", "ssn": "1"}, [FieldSpec("ssn", deterministic=True)]
    )
    other = FieldEncryption(
        keyring=local_keyring, namespace="users", vault=KeyVault.create(local_keyring)
    )
    with pytest.raises(DecryptionError, match="vault"):
        other.decrypt_fields(encrypted)


def test_vault_file_round_trip_and_rotation(tmp_path, local_keyring) -> None:
    vault = KeyVault.create(local_keyring)
    path = tmp_path / "vault.json"
    vault.save(path)
    loaded = KeyVault.load(path, local_keyring)
    fe1 = FieldEncryption(keyring=local_keyring, namespace="t", vault=vault)
    fe2 = FieldEncryption(keyring=local_keyring, namespace="t", vault=loaded)
    assert fe1.encrypt_deterministic("a", "v") == fe2.encrypt_deterministic("a", "v")
    assert fe1.blind_index("a", "v") == fe2.blind_index("a", "v")
    old = fe2.encrypt_fields({"_id": "1", "a": "v"}, [FieldSpec("a", deterministic=True)])
    loaded.add_key(local_keyring, "k2")
    fe3 = FieldEncryption(keyring=local_keyring, namespace="t", vault=loaded)
    assert fe3.encrypt_deterministic("a", "v") != fe1.encrypt_deterministic("a", "v")
    assert fe3.decrypt_fields(old) == {"_id": "1", "a": "v"}  # older vault keys still decrypt


def test_blind_index_normalised_and_per_field_keys(fe) -> None:
    specs = [
        FieldSpec("ssn", blind_index="digits"),
        FieldSpec("personal_info.email", blind_index="text"),
    ]
    a = fe.encrypt_fields(
        {"_id": "1", "ssn": "123-45-6789", "personal_info": {"email": "Ada@Example.com "}}, specs
    )
    b = fe.encrypt_fields(
        {"_id": "2", "ssn": "123 45 6789", "personal_info": {"email": "ada@example.com"}}, specs
    )
    assert a["ssn"] != b["ssn"]  # random encryption: ciphertexts differ
    assert a["_fe_bidx"]["ssn"] == b["_fe_bidx"]["ssn"]
    assert a["_fe_bidx"]["personal_info_email"] == b["_fe_bidx"]["personal_info_email"]
    assert a["_fe_bidx"]["ssn"] == fe.blind_index("ssn", "123456789", "digits")
    # the same value under another field's index key gives another index
    assert fe.blind_index("tax_id", "123456789", "digits") != a["_fe_bidx"]["ssn"]
    assert "_fe_bidx" not in fe.decrypt_fields(a)
