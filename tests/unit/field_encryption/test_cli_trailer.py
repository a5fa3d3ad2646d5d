"""File-level integrity: the trailer that ends every file field-encrypt writes.

Each record authenticates itself; these are the changes that leave every record intact
and still change the file: truncation at a record boundary, a record dropped,
duplicated or moved, two files spliced, and edits of the trailer itself. Before the
trailer existed, `decrypt` exited 0 and `verify` reported the file clean for each one.
`decrypt` must exit 1 naming the line or the trailer and leave no output; `verify` must
exit 2 with a finding at the record or the trailer, with and without a keyring.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from field_encryption.cli import main

FIELDS = ["-f", "ssn", "-f", "card"]


def plain_records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"_id": f"r{i}", "ssn": f"123-45-{1000 + i:04d}", "card": "4111111111111111"}
        for i in range(start, start + n)
    ]


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


@pytest.fixture
def key(local_key_file: Path) -> list[str]:
    return ["--local-key", str(local_key_file), "--table", "users"]


@pytest.fixture
def files(tmp_path: Path, key: list[str]) -> tuple[list[str], list[str]]:
    """Two encrypted JSON Lines files of five records each (lines incl. the trailer)."""
    out = []
    for name, start in (("a", 0), ("b", 100)):
        src = tmp_path / f"{name}.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in plain_records(5, start)))
        enc = tmp_path / f"{name}.enc.jsonl"
        assert main(["encrypt", str(src), "-o", str(enc), *key, *FIELDS]) == 0
        out.append(lines_of(enc))
    return out[0], out[1]


def edit_trailer(lines: list[str], change: Callable[[dict[str, Any]], None]) -> list[str]:
    trailer = json.loads(lines[-1])
    change(trailer["_fe"]["trailer"])
    return [*lines[:-1], json.dumps(trailer) + "\n"]


CASES: dict[str, Callable[[list[str], list[str]], list[str]]] = {
    "truncated after record 3 (trailer gone)": lambda a, b: a[:3],
    "trailer removed": lambda a, b: a[:-1],
    "record 2 dropped": lambda a, b: [*a[:1], *a[2:]],
    "record 2 duplicated": lambda a, b: [*a[:2], a[1], *a[2:]],
    "records 2 and 4 swapped": lambda a, b: [a[0], a[3], a[2], a[1], *a[4:]],
    "spliced: head of a, tail and trailer of b": lambda a, b: [*a[:3], *b[3:]],
    "spliced: a then b": lambda a, b: [*a, *b],
    "spliced: a's records, b's trailer": lambda a, b: [*a[:-1], b[-1]],
    "trailer moved up": lambda a, b: [*a[:2], a[-1], *a[2:-1]],
    "trailer count edited": lambda a, b: edit_trailer(a, lambda t: t.update(c=4)),
    "trailer chain edited": lambda a, b: edit_trailer(
        a, lambda t: t.update(h=json.loads(b[-1])["_fe"]["trailer"]["h"])
    ),
    "trailer tag edited": lambda a, b: edit_trailer(
        a, lambda t: t.update(t=json.loads(b[-1])["_fe"]["trailer"]["t"])
    ),
    "trailer with data added": lambda a, b: [
        *a[:-1],
        json.dumps({**json.loads(a[-1]), "ssn": "123-45-6789"}) + "\n",
    ],
}
# what only a keyring can see: the count and chain made consistent again, without the key
KEY_ONLY = {"trailer tag edited"}


def recount(lines: list[str]) -> list[str]:
    """Truncate after record 3 and rebuild count and chain as an attacker can (no key)."""
    from field_encryption.trailer import FileDigest

    kept = [json.loads(x) for x in lines[:3]]
    chain = FileDigest()
    for record in kept:
        chain.add(record, "_fe")
    import binascii

    def fix(t: dict[str, Any]) -> None:
        t.update(c=3, h=binascii.b2a_base64(chain.digest(), newline=False).decode())

    return [*lines[:3], *edit_trailer(lines, fix)[-1:]]


CASES["truncated, count and chain recomputed"] = lambda a, b: recount(a)
KEY_ONLY.add("truncated, count and chain recomputed")


@pytest.mark.parametrize("name", list(CASES))
def test_decrypt_refuses_and_leaves_no_output(files, key, tmp_path, capsys, name) -> None:
    a, b = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(CASES[name](copy.copy(a), copy.copy(b))))
    out = tmp_path / "out.jsonl"
    capsys.readouterr()
    assert main(["decrypt", str(bad), "-o", str(out), *key]) == 1
    err = capsys.readouterr().err
    assert "trailer" in err or "line" in err, err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_verify_reports_it(files, key, tmp_path, capsys, name, with_key) -> None:
    a, b = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(CASES[name](copy.copy(a), copy.copy(b))))
    capsys.readouterr()
    code = main(["verify", str(bad), *FIELDS, "--format", "json", *(key if with_key else [])])
    report = json.loads(capsys.readouterr().out)
    if name in KEY_ONLY and not with_key:
        # without a key the trailer's tag cannot be checked, and verify says so
        assert report["trailer"].startswith("count and chain match (tag not checked")
        return
    assert code == 2, report
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds & {"trailer-missing", "trailer-invalid", "after-trailer"}, kinds


def test_untouched_files_pass(files, key, tmp_path, capsys) -> None:
    a, _ = files
    good = tmp_path / "good.jsonl"
    good.write_text("".join(a))
    assert main(["decrypt", str(good), "-o", str(tmp_path / "d.jsonl"), *key]) == 0
    capsys.readouterr()
    assert main(["verify", str(good), *FIELDS, "--format", "json", *key]) == 0
    assert json.loads(capsys.readouterr().out)["trailer"] == "verified"


def test_empty_input_gets_a_trailer_too(tmp_path, key) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    enc = tmp_path / "empty.enc.jsonl"
    assert main(["encrypt", str(src), "-o", str(enc), *key, *FIELDS]) == 0
    assert json.loads(enc.read_text())["_fe"]["trailer"]["c"] == 0
    assert main(["decrypt", str(enc), "-o", str(tmp_path / "d.jsonl"), *key]) == 0
    enc.write_text("")  # an empty file is not an encrypted file with no records
    assert main(["decrypt", str(enc), "-o", str(tmp_path / "d2.jsonl"), *key]) == 1


def test_csv_truncation_and_reordering(tmp_path, key, capsys) -> None:
    src = tmp_path / "p.csv"
    with src.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_id", "ssn", "card"])
        for r in plain_records(4):
            writer.writerow([r["_id"], r["ssn"], r["card"]])
    enc = tmp_path / "p.enc.csv"
    assert main(["encrypt", str(src), "-o", str(enc), *key, *FIELDS]) == 0
    rows = list(csv.reader(enc.open(newline="")))
    head, body, trailer = rows[0], rows[1:-1], rows[-1]
    for name, changed in {
        "truncated": [head, *body[:2]],
        "row dropped": [head, body[0], *body[2:], trailer],
        "rows swapped": [head, body[1], body[0], *body[2:], trailer],
    }.items():
        bad = tmp_path / f"{name}.csv"
        buf = io.StringIO()
        csv.writer(buf).writerows(changed)
        bad.write_text(buf.getvalue())
        assert main(["decrypt", str(bad), "-o", str(tmp_path / "d.csv"), *key]) == 1, name
        assert main(["verify", str(bad), *FIELDS]) == 2, name
    assert main(["decrypt", str(enc), "-o", str(tmp_path / "d.csv"), *key]) == 0


def test_legacy_files_need_the_option_and_are_reported(
    tmp_path, local_key_file, capsys, caplog
) -> None:
    from field_encryption import FieldEncryption, LocalKeyring
    from field_encryption.streams import JsonlWriter

    ring = LocalKeyring.from_file(local_key_file)
    old = FieldEncryption(keyring=ring, namespace="users", format_version=1)
    legacy = tmp_path / "legacy.jsonl"
    with legacy.open("w") as handle:
        writer = JsonlWriter(handle)
        for record in plain_records(3):
            writer.write(old.encrypt_fields(record, ["ssn", "card"]))
    key = ["--local-key", str(local_key_file), "--table", "users"]
    out = tmp_path / "out.jsonl"
    assert main(["decrypt", str(legacy), "-o", str(out), *key]) == 1
    assert not out.exists()
    capsys.readouterr()
    assert main(["decrypt", str(legacy), "-o", str(out), *key, "--allow-legacy-v1"]) == 0
    assert "3 legacy format-1 records and no file trailer" in caplog.text
    assert [json.loads(x) for x in out.read_text().splitlines()] == plain_records(3)
    assert main(["verify", str(legacy), *FIELDS, "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"legacy-v1-record": 3}
    # rekey upgrades the file: format 2 records and a trailer
    upgraded = tmp_path / "upgraded.jsonl"
    assert main(["rekey", str(legacy), "-o", str(upgraded), *key, "--allow-legacy-v1"]) == 0
    assert main(["verify", str(upgraded), *FIELDS, *key]) == 0
