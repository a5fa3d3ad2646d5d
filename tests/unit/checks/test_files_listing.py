"""support/files.py's listing, run by the shell and awk of this machine (Debian's, as on the
nodes): one awk process prints what a `cat` per file printed, byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from m7guard.checks.support.files import cat_script, split_files
from m7guard.checks.support.verdict import EvidenceError

MARK = "@@m7g-0123456789abcdef"


def _cat_per_file(patterns: str, marker: str) -> str:
    """The listing as it was written before: one cat per file."""
    return (f'for f in {patterns}; do [ -f "$f" ] || continue; echo "{marker} $f"; cat "$f"; '
            f'echo; done; echo "{marker} end"')


def _run(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=False, env=env)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-plain.conf").write_bytes(b"key = 1\nother = 2\n")
    (d / "20-no-final-newline.conf").write_bytes(b"key = 3")
    (d / "30-empty.conf").write_bytes(b"")
    (d / "40-blank-lines.conf").write_bytes(b"\n\nkey = 4\n\n\n")
    (d / "50-odd bytes.conf").write_bytes(b"a\x01b\x00\ttab \xff\xfe\nlast\x01")
    (d / "60-only-control.conf").write_bytes(b"\x01")
    (d / "65-large.conf").write_bytes(b"".join(b"line %d\n" % n for n in range(200_000)))
    (d / "70-dir.conf").mkdir()  # not a regular file: not listed
    (d / "80-link.conf").symlink_to(d / "10-plain.conf")
    (d / "90-dangling.conf").symlink_to(d / "missing")
    (tmp_path / "single").write_bytes(b"x\n")
    return tmp_path


def test_one_awk_prints_what_a_cat_per_file_printed(tree: Path) -> None:
    patterns = f"{tree}/conf.d/*.conf {tree}/single {tree}/none/*.conf {tree}/absent"
    old = _run(_cat_per_file(patterns, MARK))
    new = _run(cat_script(patterns, MARK))
    assert new.returncode == 0, new.stderr
    assert new.stdout == old.stdout
    files = split_files(new.stdout.decode("utf-8", "replace"), MARK)
    listed = sorted(str(p) for p in (tree / "conf.d").iterdir() if p.is_file())
    assert list(files) == [*listed, str(tree / "single")]
    assert files[str(tree / "conf.d" / "30-empty.conf")] == ""


def test_no_file_matches() -> None:
    out = _run(cat_script("/nonexistent/*.conf /nonexistent/x", MARK))
    assert out.stdout.decode() == f"{MARK} end\n"
    assert split_files(out.stdout.decode(), MARK) == {}


def test_without_awk_the_listing_has_no_end_and_is_an_error(tree: Path) -> None:
    """A node without awk (or whose awk fails) gives no end line: `error`, never an empty
    listing that reads as `no file there`."""
    bare = tree / "bin"
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    out = _run(cat_script(f"{tree}/conf.d/*.conf", MARK), env=env)
    assert f"{MARK} end" not in out.stdout.decode()
    with pytest.raises(EvidenceError, match="ended early"):
        split_files(out.stdout.decode(), MARK)
