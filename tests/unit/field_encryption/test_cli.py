"""The field-encrypt CLI: JSON Lines and CSV, all subcommands, exit codes, atomic output."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from field_encryption.cli import main

RECORDS = [
    {
        "_id": "1",
        "ssn": "123-45-6789",
        "credit_card": "4111 1111 1111 1111",
        "personal_info": {"email": "a@example.com", "phone": "555-0100"},
    },
    {"_id": "2", "ssn": "078-05-1120", "credit_card": "5500000000000004", "personal_info": {}},
]
FIELDS = ["-f", "ssn", "-f", "credit_card", "-f", "personal_info"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def records_of(path: Path) -> list[dict]:
    """The records of an encrypted JSON Lines file, after checking it ends with a trailer."""
    rows = read_jsonl(path)
    assert set(rows[-1]) == {"_fe"} and set(rows[-1]["_fe"]) == {"trailer"}
    assert rows[-1]["_fe"]["trailer"]["c"] == len(rows) - 1
    return rows[:-1]


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "users.jsonl", RECORDS)


@pytest.fixture
def key(local_key_file: Path) -> list[str]:
    return ["--local-key", str(local_key_file), "--table", "users"]


def test_encrypt_decrypt_jsonl(plain, key, tmp_path) -> None:
    enc, dec = tmp_path / "enc.jsonl", tmp_path / "dec.jsonl"
    assert main(["encrypt", str(plain), "-o", str(enc), *key, *FIELDS]) == 0
    rows = records_of(enc)
    assert all(r["ssn"].startswith("fe1:") and "_fe" in r for r in rows)
    assert len({r["_fe"]["k"] for r in rows}) == 1  # one data key for the batch
    trailer = read_jsonl(enc)[-1]["_fe"]["trailer"]
    assert trailer["k"] == rows[0]["_fe"]["k"]  # the trailer costs no extra data key
    assert main(["decrypt", str(enc), "-o", str(dec), *key]) == 0
    assert read_jsonl(dec) == RECORDS
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".fe-tmp")) == []


def test_wrong_table_fails_with_exit_1(plain, key, tmp_path, local_key_file, capsys) -> None:
    enc = tmp_path / "enc.jsonl"
    main(["encrypt", str(plain), "-o", str(enc), *key, *FIELDS])
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "decrypt",
            str(enc),
            "-o",
            str(out),
            "--local-key",
            str(local_key_file),
            "--table",
            "orders",
        ]
    )
    assert code == 1
    assert not out.exists()
    assert "line 1" in capsys.readouterr().err


def test_usage_errors_exit_1(plain, key, capsys) -> None:
    assert main(["encrypt", str(plain), *key, *FIELDS]) == 1  # no --output
    assert main(["encrypt", str(plain), "-o", "x.jsonl", *FIELDS]) == 1  # no keyring
    assert main(["encrypt", str(plain), "-o", str(plain), *key, *FIELDS]) == 1
    assert main(["no-such-command"]) == 1
    assert main(["encrypt", str(plain), "-o", "-", *key, "-f", "missing"]) == 1
    assert main(["--help"]) == 0


def test_a_usage_error_names_the_option_and_options_are_not_abbreviated(plain, key, capsys):
    capsys.readouterr()
    assert main(["encrypt", str(plain), "-o", "x.jsonl", "--loc", "k", *FIELDS]) == 1
    err = capsys.readouterr().err
    assert err.startswith("field-encrypt: usage: ") and "--loc" in err
    assert main(["encrypt", str(plain), "-o", "x.jsonl", *key, "--max-key-uses", "many"]) == 1
    assert "--max-key-uses" in capsys.readouterr().err
    assert main(["keys"]) == 1 and "name a command" in capsys.readouterr().err


def test_the_progress_bar_is_left_out_without_rich(monkeypatch) -> None:
    """rich is not a dependency of the field-encryption distribution: on a terminal without
    it the commands run without a progress bar instead of failing on the import."""
    import sys

    from field_encryption import cli

    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with cli._progress(None, "encrypt") as tick:  # type: ignore[arg-type]
        tick(5)


def test_optional_paths(plain, key, tmp_path) -> None:
    enc = tmp_path / "enc.jsonl"
    args = [
        "encrypt",
        str(plain),
        "-o",
        str(enc),
        *key,
        "-f",
        "ssn",
        "--optional",
        "personal_info.phone",
    ]
    assert main(args) == 0
    rows = records_of(enc)
    assert rows[0]["personal_info"]["phone"].startswith("fe1:")
    assert rows[1]["personal_info"] == {}


def test_in_place_is_atomic_and_keeps_mode(plain, key) -> None:
    os.chmod(plain, 0o640)
    assert main(["encrypt", str(plain), "--in-place", *key, *FIELDS]) == 0
    assert records_of(plain)[0]["ssn"].startswith("fe1:")
    assert (plain.stat().st_mode & 0o777) == 0o640
    assert main(["decrypt", str(plain), "--in-place", *key]) == 0
    assert read_jsonl(plain) == RECORDS


def test_csv_round_trip(tmp_path, key) -> None:
    src = tmp_path / "cards.csv"
    with src.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["_id", "name", "card.number", "ssn"])
        writer.writerow(["1", "Ada", "4111 1111 1111 1111", "123-45-6789"])
        writer.writerow(["2", "Bob, Jr.", "", "078-05-1120"])
    enc, dec = tmp_path / "enc.csv", tmp_path / "dec.csv"
    assert main(["encrypt", str(src), "-o", str(enc), *key, "-f", "card.number", "-f", "ssn"]) == 0
    rows = list(csv.DictReader(enc.open(newline="")))
    assert list(rows[0]) == ["_id", "name", "card.number", "ssn", "_fe"]
    assert rows[0]["card.number"].startswith("fe1:") and rows[1]["name"] == "Bob, Jr."
    assert json.loads(rows[0]["_fe"])["v"] == 2
    # the trailer row: every cell empty but the header column
    assert len(rows) == 3 and {k for k, v in rows[2].items() if v} == {"_fe"}
    assert json.loads(rows[2]["_fe"])["trailer"]["c"] == 2
    assert main(["verify", str(enc), "-f", "card.number", "-f", "ssn"]) == 0
    assert main(["decrypt", str(enc), "-o", str(dec), *key]) == 0
    assert dec.read_text() == src.read_text()


def test_verify_exit_codes_and_json(plain, key, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert main(["verify", str(plain), "-f", "ssn", "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "findings" and report["records"] == 2
    kinds = {(f["kind"], f["path"]) for f in report["findings"]}
    assert ("unencrypted-field", "ssn") in kinds
    assert ("pan", "credit_card") in kinds and ("ssn", "ssn") in kinds
    text = json.dumps(report)
    for record in RECORDS:  # never the full plaintext
        assert record["ssn"] not in text and record["credit_card"] not in text
    assert "**** **** **** 1111" in text and "***-**-6789" in text

    enc = tmp_path / "enc.jsonl"
    main(["encrypt", str(plain), "-o", str(enc), *key, *FIELDS])
    capsys.readouterr()
    assert main(["verify", str(enc), *FIELDS, "--format", "json", *key]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["status"] == "clean" and clean["counts"] == {}
    assert main(["verify", str(tmp_path / "absent.jsonl"), "-f", "ssn"]) == 1


def test_verify_detects_tampering_with_a_keyring(plain, key, tmp_path, capsys) -> None:
    enc = tmp_path / "enc.jsonl"
    main(["encrypt", str(plain), "-o", str(enc), *key, *FIELDS])
    rows = read_jsonl(enc)
    rows[0]["ssn"], rows[0]["credit_card"] = rows[0]["credit_card"], rows[0]["ssn"]
    write_jsonl(enc, rows)
    assert main(["verify", str(enc), *FIELDS]) == 0  # structure alone looks fine
    capsys.readouterr()
    assert main(["verify", str(enc), *FIELDS, *key]) == 2
    assert "decrypt-failed" in capsys.readouterr().out


def test_rewrap_and_rekey_commands(plain, key, tmp_path, local_key_file) -> None:
    from field_encryption import create_key_file

    new_key = create_key_file(tmp_path / "new-key.json", "new")
    enc, rewrapped, rekeyed, dec = (
        tmp_path / n for n in ("e.jsonl", "w.jsonl", "k.jsonl", "d.jsonl")
    )
    # --record-mac is still accepted from older scripts; records are always authenticated
    main(["encrypt", str(plain), "-o", str(enc), *key, *FIELDS, "--record-mac"])
    assert (
        main(["rewrap", str(enc), "-o", str(rewrapped), *key, "--to-local-key", str(new_key)]) == 0
    )
    before, after = records_of(enc), records_of(rewrapped)
    for b, a in zip(before, after, strict=True):
        assert b["_fe"].pop("w") != a["_fe"].pop("w")
        assert b["_fe"].pop("a") != a["_fe"].pop("a")
        assert a == b
    # the rewrapped file's trailer is keyed under the new key: the old one cannot verify it
    assert main(["verify", str(rewrapped), *FIELDS, *key]) == 2
    new = ["--local-key", str(new_key), "--table", "users"]
    assert main(["rekey", str(rewrapped), "-o", str(rekeyed), *new]) == 0
    assert {r["_fe"]["k"] for r in records_of(rekeyed)}.isdisjoint({r["_fe"]["k"] for r in after})
    assert main(["decrypt", str(rekeyed), "-o", str(dec), *new]) == 0
    assert read_jsonl(dec) == RECORDS


def test_deterministic_and_blind_index_options(plain, key, tmp_path, local_key_file) -> None:
    vault = tmp_path / "vault.json"
    assert main(["keys", "vault-new", str(vault), "--local-key", str(local_key_file)]) == 0
    enc = tmp_path / "e.jsonl"
    args = [
        "encrypt",
        str(plain),
        "-o",
        str(enc),
        *key,
        *FIELDS,
        "--vault",
        str(vault),
        "--deterministic",
        "ssn",
        "--blind-index",
        "credit_card:digits",
    ]
    assert main(args) == 0
    rows = records_of(enc)
    assert all("credit_card" in r["_fe_bidx"] for r in rows)
    assert (
        main(["decrypt", str(enc), "-o", str(tmp_path / "d.jsonl"), *key, "--vault", str(vault)])
        == 0
    )
    assert read_jsonl(tmp_path / "d.jsonl") == RECORDS


def test_progress_only_on_a_terminal(plain, local_key_file, tmp_path) -> None:
    args = [
        sys.executable,
        "-m",
        "field_encryption.cli",
        "encrypt",
        str(plain),
        "-o",
        str(tmp_path / "e.jsonl"),
        "--local-key",
        str(local_key_file),
        "-f",
        "ssn",
    ]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0
    assert "records" not in piped.stderr and "━" not in piped.stderr
    master, slave = pty.openpty()
    args[6] = str(tmp_path / "e2.jsonl")
    proc = subprocess.run(args, stderr=slave, stdout=subprocess.DEVNULL, timeout=60)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "2 records" in shown and "━" in shown
