"""Find plaintext card numbers (PAN) and US social security numbers in record values.

Card numbers: 13-19 digits, optionally grouped with single spaces or dashes, that pass
the Luhn check. SSNs: ``AAA-GG-SSSS`` or ``AAA GG SSSS`` with valid area, group and
serial numbers; nine bare digits only count in a field whose name mentions ssn or
social security. Findings carry a masked value: every digit but the last four hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from field_encryption import envelope, paths

_PAN = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"(?<!\d)(\d{3})(\d{2})(\d{4})(?!\d)")
_SSN_KEY = re.compile(r"ssn|social.?sec", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    kind: str  # "pan", "ssn" or "unencrypted-field"
    path: str
    masked: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask(text: str) -> str:
    """Hide every digit except the last four, keep separators."""
    digits_seen = sum(c.isdigit() for c in text)
    out = []
    for ch in text:
        if ch.isdigit():
            digits_seen -= 1
            out.append(ch if digits_seen < 4 else "*")
        else:
            out.append(ch)
    return "".join(out)


def _valid_ssn(area: str, group: str, serial: str) -> bool:
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


def scan_text(text: str, key_hint: str = "") -> Iterator[tuple[str, str]]:
    """(kind, masked) for every PAN or SSN in ``text``."""
    for match in _PAN.finditer(text):
        raw = match.group(0)
        if "  " in raw or "--" in raw:
            continue
        digits = re.sub(r"\D", "", raw)
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            yield "pan", mask(raw)
    for match in _SSN.finditer(text):
        if _valid_ssn(match.group(1), match.group(3), match.group(4)):
            yield "ssn", mask(match.group(0))
    if key_hint and _SSN_KEY.search(key_hint):
        for match in _SSN_BARE.finditer(text):
            if _valid_ssn(*match.groups()):
                yield "ssn", mask(match.group(0))


def scan_record(record: Any, skip: frozenset[str] = frozenset()) -> Iterator[Finding]:
    """Findings in every scalar of ``record`` (ciphertexts and top-level ``skip`` keys aside).

    Only a value that parses as a whole field ciphertext is passed over: text that merely
    starts with the ``fe1:`` prefix is scanned like any other.
    """
    for steps, value in paths.iter_strings(record):
        if steps and steps[0] in skip:
            continue
        if type(value) is int and not isinstance(value, bool):
            text = str(value)
        elif type(value) is str:
            if value.startswith(envelope.STRING_PREFIX) and envelope.is_ciphertext(value):
                continue
            text = value
        else:
            continue
        key_hint = next((s for s in reversed(steps) if isinstance(s, str)), "")
        for kind, masked in scan_text(text, key_hint):
            yield Finding(kind, paths.display(steps) if steps else "$", masked)
