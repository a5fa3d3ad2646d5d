"""No key material or plaintext in log records or exception messages."""

from __future__ import annotations

import binascii
import copy
import json
import logging

import pytest

from field_encryption import FieldEncryption, FieldSpec, LocalKeyring
from field_encryption.errors import FieldEncryptionError

SECRETS = ["123-45-6789", "4111 1111 1111 1111", "ada@example.com", "02139"]


def forms(raw: bytes) -> list[str]:
    return [
        raw.hex(),
        raw.hex().upper(),
        binascii.b2a_base64(raw, newline=False).decode(),
        repr(raw),
    ]


def test_no_secrets_in_logs_or_errors(caplog, local_key_file, vault, user_record) -> None:
    caplog.set_level(logging.DEBUG)
    keyring = LocalKeyring.from_file(local_key_file)
    fe = FieldEncryption(keyring=keyring, namespace="users", vault=vault, record_mac=True)
    specs = [
        "ssn",
        "credit_card",
        "personal_info",
        FieldSpec("cards[0].number", blind_index="digits"),
    ]
    encrypted = fe.encrypt_fields(user_record, specs)
    fe.decrypt_fields(encrypted)
    data_key = next(iter(fe.cache._entries.values())).plaintext_key()
    file_key = binascii.a2b_base64(json.loads(local_key_file.read_text())["key"])

    messages: list[str] = []
    attempts = [
        lambda: fe.encrypt_fields({**user_record, "ssn": {1, 2}}, ["ssn"]),
        lambda: fe.encrypt_fields(user_record, ["nope"]),
        lambda: FieldEncryption(
            keyring=LocalKeyring(b"\x00" * 32, "local:dev"), namespace="users"
        ).decrypt_fields(encrypted),
        lambda: FieldEncryption(keyring=keyring, namespace="other").decrypt_fields(encrypted),
    ]
    for field in ("ssn", "credit_card", "personal_info"):
        bad = copy.deepcopy(encrypted)
        bad[field] = encrypted["ssn" if field != "ssn" else "credit_card"]
        attempts.append(lambda bad=bad: fe.decrypt_fields(bad))
    plain_in_field = copy.deepcopy(encrypted)
    plain_in_field["ssn"] = "123-45-6789"
    attempts.append(lambda: fe.decrypt_fields(plain_in_field))
    for attempt in attempts:
        with pytest.raises(FieldEncryptionError) as info:
            attempt()
        messages.append(str(info.value))
        messages.append(repr(info.value))
    messages += [r.getMessage() for r in caplog.records]
    messages.append(repr(fe.cache._entries))
    messages.append(repr(keyring))
    text = "\n".join(messages)
    assert "failed authentication" in text or "MAC" in text  # the failures did happen
    for secret in SECRETS:
        assert secret not in text
    for raw in (data_key, file_key):
        for form in forms(raw):
            assert form not in text
