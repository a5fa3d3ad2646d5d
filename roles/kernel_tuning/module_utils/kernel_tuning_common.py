"""File helpers shared by kernel_tuning's modules."""

from __future__ import annotations

import os
import tempfile


def read_text(path):
    """The text of `path`, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def write_atomic(path, content, mode=0o644):
    """Replace `path` with `content` (mode `mode`) in one rename; create missing parents."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kernel_tuning.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
