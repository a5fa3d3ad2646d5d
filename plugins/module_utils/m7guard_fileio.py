"""File helpers shared by the collection's modules."""

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


def write_atomic(path, content, mode=0o644, uid=None, gid=None):
    """Replace `path` with `content` (mode `mode`, owner `uid`:`gid` when given) in one
    rename; create missing parents (mode 0755)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    # mkstemp: a new file of a random name (O_EXCL), never one someone placed there; owner and
    # mode are set on the open descriptor, so a link swapped in cannot redirect them.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".m7guard.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if uid is not None or gid is not None:
                os.fchown(fh.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fh.fileno(), mode)
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def replace_text(path, content):
    """Replace the existing file `path` with `content`, keeping its owner and mode (one rename,
    through write_atomic's temporary file of a random name)."""
    st = os.stat(path)
    write_atomic(path, content, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
