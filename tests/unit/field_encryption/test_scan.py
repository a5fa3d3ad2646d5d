"""PAN and SSN detection used by `field-encrypt verify`."""

from __future__ import annotations

import pytest

from field_encryption import scan


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card: 5500 0000 0000 0004 exp 12/29",
        "378282246310005",  # 15-digit Amex
        "6011111111111117",
        "4222222222222",  # 13 digits
        "5019717010103742",
    ],
)
def test_finds_luhn_valid_pans(text: str) -> None:
    kinds = [k for k, _ in scan.scan_text(text)]
    assert "pan" in kinds


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits
        "order 1234567890123",  # not Luhn-valid
        "0000000000000000",  # all one digit
        "4111--1111-1111-1111",
        "fe1:AQEGdVFUfP0EaWIn",
    ],
)
def test_ignores_non_pans(text: str) -> None:
    assert [k for k, _ in scan.scan_text(text)] == []


def test_ssn_formats_and_rules() -> None:
    assert [k for k, _ in scan.scan_text("ssn 078-05-1120")] == ["ssn"]
    assert [k for k, _ in scan.scan_text("078 05 1120")] == ["ssn"]
    for invalid in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"):
        assert list(scan.scan_text(invalid)) == []
    assert list(scan.scan_text("123456789")) == []  # bare digits need an ssn-like key
    assert [k for k, _ in scan.scan_text("123456789", key_hint="ssn")] == ["ssn"]
    assert list(scan.scan_text("123-45 6789")) == []  # mixed separators


def test_masking_keeps_only_last_four() -> None:
    assert scan.mask("4111 1111 1111 1234") == "**** **** **** 1234"
    assert scan.mask("123-45-6789") == "***-**-6789"
    findings = list(scan.scan_text("pay 4111-1111-1111-1111 now"))
    assert findings == [("pan", "****-****-****-1111")]


def test_scan_record_walks_everything_but_ciphertexts_and_header() -> None:
    record = {
        "note": "call about 4111 1111 1111 1111",
        "nested": {"list": ["x", {"ssn": "078-05-1120"}], "n": 4111111111111111},
        "enc": "fe1:AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "_fe": {"k": "4111111111111111"},
    }
    found = {(f.kind, f.path, f.masked) for f in scan.scan_record(record, frozenset({"_fe"}))}
    assert found == {
        ("pan", "note", "**** **** **** 1111"),
        ("ssn", "nested.list[1].ssn", "***-**-1120"),
        ("pan", "nested.n", "************1111"),
    }
