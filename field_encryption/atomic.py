"""Write a file so that readers see either the old content or the complete new one.

Output goes to a temporary file in the destination's directory (same filesystem),
is flushed and fsync'ed, then renamed over the destination. If the writer dies
before the rename, the destination is untouched; only a ``.<name>.*.fe-tmp`` file
may be left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from field_encryption.errors import ConfigurationError

TEMP_SUFFIX = ".fe-tmp"


@contextlib.contextmanager
def atomic_output(
    destination: Path,
    *,
    binary: bool = False,
    mode_from: Path | None = None,
    newline: str | None = None,
) -> Iterator[IO]:
    """Yield a file to write; on success it replaces ``destination`` atomically."""
    directory = destination.parent if str(destination.parent) else Path(".")
    if not directory.is_dir():
        raise ConfigurationError(f"output directory {directory} does not exist")
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=TEMP_SUFFIX, dir=directory
    )
    temp = Path(temp_name)
    try:
        if binary:
            handle: IO = os.fdopen(fd, "wb", buffering=1 << 20)
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline=newline, buffering=1 << 20)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        reference = mode_from if mode_from is not None and mode_from.exists() else None
        if reference is None and destination.exists():
            reference = destination
        if reference is not None:
            os.chmod(temp, reference.stat().st_mode & 0o7777)
        os.replace(temp, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(destination: Path, text: str) -> None:
    with atomic_output(destination) as handle:
        handle.write(text)
