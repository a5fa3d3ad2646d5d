"""Round trips: arbitrary JSON records and paths, sub-documents, types, selection errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from field_encryption import FieldEncryption, FieldSpec, envelope, paths
from field_encryption.errors import ConfigurationError, PathError, UnsupportedValueError

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=20,
)
records = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in ("_fe", "_fe_bidx", "_id")),
    json_values,
    min_size=1,
    max_size=6,
)


def all_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if type(node) is dict:
        for key, value in node.items():
            out += all_paths(value, (*prefix, key))
    elif type(node) is list:
        for index, value in enumerate(node):
            out += all_paths(value, (*prefix, index))
    return out


def non_overlapping(chosen: list[tuple]) -> list[tuple]:
    kept: list[tuple] = []
    for p in chosen:
        if any(p[: len(q)] == q or q[: len(p)] == p for q in kept):
            continue
        kept.append(p)
    return kept


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.data(), st.booleans())
def test_round_trip_arbitrary_records_and_paths(shared_keyring, record, data, as_bytes) -> None:
    candidates = all_paths(record)
    picked = data.draw(st.lists(st.sampled_from(candidates), max_size=5)) if candidates else []
    chosen = non_overlapping(picked)
    assume(chosen)
    fe = FieldEncryption(
        keyring=shared_keyring,
        namespace="hypothesis",
        record_id_field=None,
        output="bytes" if as_bytes else "string",
    )
    original = copy.deepcopy(record)
    encrypted = fe.encrypt_fields(record, [paths.display(p) for p in chosen])
    assert record == original  # input untouched
    for p in chosen:
        value = paths.get(encrypted, p)
        assert envelope.is_ciphertext(value)
    decrypted = fe.decrypt_fields(encrypted)
    assert decrypted == original
    assert repr(decrypted) == repr(original)  # same types (int vs float vs bool), same order


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, min_size=1, max_size=5), st.text(min_size=1, max_size=10))
def test_round_trip_wildcards(shared_keyring, items, record_id) -> None:
    fe = FieldEncryption(keyring=shared_keyring, namespace="t")
    record = {"_id": record_id, "items": [{"v": v} for v in items]}
    encrypted = fe.encrypt_fields(record, ["items[*].v"])
    assert all(envelope.is_ciphertext(i["v"]) for i in encrypted["items"])
    assert fe.decrypt_fields(encrypted) == record


def test_seed_personal_info_sub_document_keeps_its_type(fe, user_record) -> None:
    encrypted = fe.encrypt_fields(data=user_record, fields=["ssn", "credit_card", "personal_info"])
    assert isinstance(encrypted["personal_info"], str)
    assert encrypted["personal_info"].startswith("fe1:")
    assert encrypted["name"] == "Ada"
    decrypted = fe.decrypt_fields(data=encrypted)
    assert decrypted == user_record
    assert isinstance(decrypted["personal_info"], dict)
    assert decrypted["personal_info"]["age"] == 36 and decrypted["personal_info"]["vip"] is True


def test_dot_paths_into_sub_document_and_lists(fe, user_record) -> None:
    fields = ["personal_info.email", "personal_info.address.lines[1]", "cards[*].number"]
    encrypted = fe.encrypt_fields(user_record, fields)
    assert encrypted["personal_info"]["phone"] == "+1 555 0100"
    assert encrypted["personal_info"]["address"]["lines"][0] == "1 Main St"
    assert encrypted["personal_info"]["address"]["lines"][1].startswith("fe1:")
    assert user_record["personal_info"]["email"] == "ada@example.com"  # no aliasing
    assert fe.decrypt_fields(encrypted) == user_record


def test_missing_path_is_an_error_unless_optional(fe, user_record) -> None:
    with pytest.raises(PathError, match=r"personal_info\.fax"):
        fe.encrypt_fields(user_record, ["ssn", "personal_info.fax"])
    encrypted = fe.encrypt_fields(
        user_record, ["ssn", "personal_info.fax?", FieldSpec("nope", optional=True)]
    )
    assert encrypted["_fe"]["f"] == ['["ssn"]']
    with pytest.raises(PathError):
        fe.encrypt_fields({"_id": "x", "cards": []}, ["cards[*].number"])
    assert fe.encrypt_fields({"_id": "x", "cards": []}, ["cards[*].number?"])["cards"] == []


def test_overlapping_selection_is_rejected(fe, user_record) -> None:
    with pytest.raises(PathError, match="same value"):
        fe.encrypt_fields(user_record, ["personal_info", "personal_info.email"])
    with pytest.raises(PathError):
        fe.encrypt_fields(user_record, ["cards[*].number", "cards[0].number"])
    with pytest.raises(PathError):
        fe.encrypt_fields(user_record, ["ssn", "ssn"])


def test_record_id_field_cannot_be_encrypted(fe, user_record) -> None:
    with pytest.raises(PathError, match="record id"):
        fe.encrypt_fields(user_record, ["_id"])


def test_unsupported_value_type(fe) -> None:
    with pytest.raises(UnsupportedValueError, match="set"):
        fe.encrypt_fields({"_id": "1", "x": {1, 2}}, ["x"])


def test_already_encrypted_record_is_refused(fe, user_record) -> None:
    encrypted = fe.encrypt_fields(user_record, ["ssn"])
    with pytest.raises(ConfigurationError, match="rekey"):
        fe.encrypt_fields(encrypted, ["credit_card"])


def test_partial_decrypt_keeps_header(fe, user_record) -> None:
    encrypted = fe.encrypt_fields(user_record, ["ssn", "credit_card"])
    view = fe.decrypt_fields(encrypted, ["ssn"])
    assert view["ssn"] == "123-45-6789"
    assert view["credit_card"].startswith("fe1:")
    assert "_fe" in view
    with pytest.raises(PathError):
        fe.decrypt_fields(encrypted, ["name"])


def test_integer_record_ids_and_explicit_ids(fe) -> None:
    record = {"_id": 42, "ssn": "1"}
    encrypted = fe.encrypt_fields(record, ["ssn"])
    assert "r" not in encrypted["_fe"]
    assert fe.decrypt_fields(encrypted) == record
    no_id = {"ssn": "2"}
    encrypted = fe.encrypt_fields(no_id, ["ssn"], record_id="row-9")
    assert fe.decrypt_fields(encrypted, record_id="row-9") == no_id
    with pytest.raises(ConfigurationError):
        fe.encrypt_fields({"_id": 1.5, "ssn": "3"}, ["ssn"])


def test_one_data_key_serves_many_records(fe, user_record) -> None:
    first = fe.encrypt_fields(user_record, ["ssn"])
    second = fe.encrypt_fields(user_record, ["ssn"])
    assert first["_fe"]["k"] == second["_fe"]["k"]
    assert first["_fe"]["w"] == second["_fe"]["w"]
    assert first["ssn"] != second["ssn"]  # fresh nonce per field
