"""SIGKILL in the middle of a CLI run never leaves a partial file at the destination."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECORDS = 150_000


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill") / "source.jsonl"
    with path.open("w") as handle:
        for i in range(RECORDS):
            handle.write(
                json.dumps(
                    {
                        "_id": str(i),
                        "ssn": "123-45-6789",
                        "credit_card": "4111 1111 1111 1111",
                        "personal_info": {"email": f"user{i}@example.com"},
                    }
                )
                + "\n"
            )
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_and_kill(args: list[str], watch_dir: Path, stem: str) -> list[Path]:
    """Start the CLI, wait until its temp output has data, SIGKILL it; return leftovers."""
    cmd = [sys.executable, "-m", "field_encryption.cli", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temps = [p for p in watch_dir.glob(f".{stem}.*.fe-tmp") if p.stat().st_size > 0]
            if temps:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.002)
        else:
            pytest.fail("the temporary output never appeared")
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    return sorted(watch_dir.glob(f".{stem}.*.fe-tmp"))


def test_kill_leaves_no_destination(big_input, local_key_file, tmp_path) -> None:
    before = digest(big_input)
    destination = tmp_path / "out.jsonl"
    leftovers = run_and_kill(
        [
            "encrypt",
            str(big_input),
            "-o",
            str(destination),
            "--local-key",
            str(local_key_file),
            "-f",
            "ssn",
            "-f",
            "credit_card",
            "-f",
            "personal_info.email",
        ],
        tmp_path,
        "out.jsonl",
    )
    assert not destination.exists()
    assert digest(big_input) == before
    assert len(leftovers) == 1  # only the named temporary file can remain


def test_kill_keeps_previous_destination(big_input, local_key_file, tmp_path) -> None:
    destination = tmp_path / "out.jsonl"
    destination.write_text('{"previous": true}\n')
    run_and_kill(
        [
            "encrypt",
            str(big_input),
            "-o",
            str(destination),
            "--local-key",
            str(local_key_file),
            "-f",
            "ssn",
        ],
        tmp_path,
        "out.jsonl",
    )
    assert destination.read_text() == '{"previous": true}\n'


def test_kill_during_in_place_keeps_input(big_input, local_key_file, tmp_path) -> None:
    work = tmp_path / "data.jsonl"
    work.write_bytes(big_input.read_bytes())
    before = digest(work)
    run_and_kill(
        ["encrypt", str(work), "--in-place", "--local-key", str(local_key_file), "-f", "ssn"],
        tmp_path,
        "data.jsonl",
    )
    assert digest(work) == before


def _temp_with_data(watch_dir: Path, stem: str) -> list[Path]:
    found = []
    for path in watch_dir.glob(f".{stem}.*.fe-tmp"):
        with contextlib.suppress(FileNotFoundError):  # removed between glob and stat
            if path.stat().st_size > 0:
                found.append(path)
    return found


def test_sigterm_cleans_up_temp_file(big_input, local_key_file, tmp_path) -> None:
    """SIGTERM in the middle of a run removes the temporary output.

    Deterministic: the records come through stdin, which stays open until the signal has
    been handled, so the run cannot finish (or not have started) before SIGTERM; and the
    signal is sent only once the temporary output holds data, an event that shows the run is
    inside its atomic write (the SIGTERM handler installed, the temporary file's removal
    armed). Waiting for it is a bounded poll that fails loudly, never a sleep.
    """
    destination = tmp_path / "out.jsonl"
    errors = tmp_path / "stderr.txt"
    cmd = [
        sys.executable,
        "-m",
        "field_encryption.cli",
        "encrypt",
        "-",
        "--input-format",
        "jsonl",
        "-o",
        str(destination),
        "--local-key",
        str(local_key_file),
        "-f",
        "ssn",
    ]
    with errors.open("wb") as err, big_input.open("rb") as source:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        assert proc.stdin is not None
        try:
            deadline = time.monotonic() + 120
            while not _temp_with_data(tmp_path, "out.jsonl"):
                assert proc.poll() is None, errors.read_text()
                if time.monotonic() > deadline:
                    pytest.fail("the temporary output never received data")
                chunk = source.read(64 * 1024)
                assert chunk, "the whole input was fed and the temporary output is still empty"
                proc.stdin.write(chunk)
                proc.stdin.flush()
            assert proc.poll() is None  # it waits for more input: it cannot have finished
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
    assert code == 128 + signal.SIGTERM, (code, errors.read_text())
    assert not destination.exists()
    assert list(tmp_path.glob(".out.jsonl.*.fe-tmp")) == []
