"""Tamper battery over every part of a format-2 record: each header entry, each field,
the blind indexes. Every case is a change an attacker with write access to the store can
make without any key; each one must raise TamperError (or FormatError for what no longer
parses), never return a record. Each case is also refused by ``authenticate``, the check
``rewrap`` relies on.
"""

from __future__ import annotations

import binascii
import copy
import os
from collections.abc import Callable
from typing import Any

import pytest

from field_encryption import FieldEncryption, FieldSpec, LocalKeyring, MultiKeyring
from field_encryption.errors import DecryptionError, TamperError

FIELDS: list[Any] = [
    "ssn",
    "credit_card",
    FieldSpec("personal_info.email", blind_index="text"),
    FieldSpec("personal_info.phone", deterministic=True, join_scope="phones"),
]


@pytest.fixture
def two_wraps() -> MultiKeyring:
    return MultiKeyring(
        LocalKeyring(os.urandom(32), "local:primary"),
        [LocalKeyring(os.urandom(32), "local:dr")],
    )


@pytest.fixture
def writer(two_wraps, vault) -> FieldEncryption:
    return FieldEncryption(keyring=two_wraps, namespace="users", vault=vault)


@pytest.fixture
def pair(writer, user_record) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two records under the same cached data key: the second one is material to splice."""
    first = writer.encrypt_fields(user_record, FIELDS)
    second = writer.encrypt_fields(
        {
            **user_record,
            "ssn": "078-05-1120",
            "personal_info": {
                **user_record["personal_info"],
                "email": "eve@example.com",
                "phone": "+1 555 0199",
            },
        },
        FIELDS,
    )
    assert first["_fe"]["k"] == second["_fe"]["k"]
    return first, second


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def _flip(text: str) -> str:
    raw = bytearray(binascii.a2b_base64(text))
    raw[0] ^= 1
    return _b64(bytes(raw))


Change = Callable[[dict[str, Any], dict[str, Any]], None]

CASES: dict[str, Change] = {
    # v
    "v: downgraded to 1": lambda r, o: r["_fe"].update(v=1),
    "v: downgraded to 1, n and a removed": lambda r, o: (
        r["_fe"].update(v=1),
        r["_fe"].pop("n"),
        r["_fe"].pop("a"),
    ),
    # k
    "k: another valid key id": lambda r, o: r["_fe"].update(k=_b64(os.urandom(16))),
    # w
    "w: DR wrap removed": lambda r, o: r["_fe"].update(w=r["_fe"]["w"][:1]),
    "w: wraps reordered": lambda r, o: r["_fe"].update(w=r["_fe"]["w"][::-1]),
    "w: primary wrap duplicated": lambda r, o: r["_fe"].update(w=[r["_fe"]["w"][0]] * 2),
    # f
    "f: a path dropped": lambda r, o: r["_fe"]["f"].remove('["ssn"]'),
    "f: emptied": lambda r, o: r["_fe"].update(f=[]),
    "f: reordered": lambda r, o: r["_fe"].update(f=r["_fe"]["f"][::-1]),
    "f: a path added": lambda r, o: r["_fe"]["f"].append('["name"]'),
    # r
    "r: a random id added": lambda r, o: r["_fe"].update(r=_b64(os.urandom(16))),
    # s
    "s: join scope removed": lambda r, o: r["_fe"].pop("s"),
    "s: join scope renamed": lambda r, o: r["_fe"].update(s={'["personal_info","phone"]': "x"}),
    # n
    "n: removed": lambda r, o: r["_fe"].pop("n"),
    "n: taken from the other record": lambda r, o: r["_fe"].update(n=o["_fe"]["n"]),
    "n: one bit flipped": lambda r, o: r["_fe"].update(n=_flip(r["_fe"]["n"])),
    # a
    "a: removed": lambda r, o: r["_fe"].pop("a"),
    "a: one bit flipped": lambda r, o: r["_fe"].update(a=_flip(r["_fe"]["a"])),
    "a: kept while the primary wrap is removed": lambda r, o: r["_fe"].update(w=r["_fe"]["w"][1:]),
    # m (a record with random-mode fields has none)
    "m: added": lambda r, o: r["_fe"].update(m="AAAAAAAAAAAAAAAAAAAAAA=="),
    # the whole header
    "header: the other record's": lambda r, o: r.update(_fe=copy.deepcopy(o["_fe"])),
    # fields
    "field: random-mode value from the other record": lambda r, o: r.update(ssn=o["ssn"]),
    "field: deterministic value from the other record": lambda r, o: r["personal_info"].update(
        phone=o["personal_info"]["phone"]
    ),
    "field: plaintext forged, path removed": lambda r, o: (
        r.update(ssn="999-99-9999"),
        r["_fe"]["f"].remove('["ssn"]'),
    ),
    "field: dropped with its path": lambda r, o: (
        r.pop("credit_card"),
        r["_fe"]["f"].remove('["credit_card"]'),
    ),
    # blind indexes
    "index: value from the other record": lambda r, o: r.update(_fe_bidx=o["_fe_bidx"]),
    "index: removed": lambda r, o: r.pop("_fe_bidx"),
    "index: entry added": lambda r, o: r["_fe_bidx"].update(ssn="AAAAAAAAAAAAAAAAAAAAAA=="),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_change_is_refused(writer, pair, name: str) -> None:
    first, second = pair
    bad = copy.deepcopy(first)
    CASES[name](bad, second)
    assert bad != first
    with pytest.raises(DecryptionError) as raised:
        writer.decrypt_fields(bad)
    if not name.startswith("m:"):  # an entry that does not belong there is malformed
        assert isinstance(raised.value, TamperError), raised.value


def test_untouched_pair_decrypts(writer, pair, user_record) -> None:
    assert writer.decrypt_fields(pair[0]) == user_record
    writer.authenticate(pair[1])


@pytest.mark.parametrize("name", list(CASES))
def test_authenticate_refuses_it_too(two_wraps, pair, name: str) -> None:
    # the check rewrap relies on: no vault, no field decrypted
    reader = FieldEncryption(keyring=two_wraps, namespace="users")
    first, second = pair
    bad = copy.deepcopy(first)
    CASES[name](bad, second)
    with pytest.raises(DecryptionError):
        reader.authenticate(bad)
