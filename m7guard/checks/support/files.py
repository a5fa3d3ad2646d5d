"""Several files of a host read in one round trip.

Each file's contents follow a line `<marker> <path>`, and the listing ends with `<marker> end`.
The marker is random (a file written before the audit cannot contain it), so a file cannot
pass off lines of its own as another file; and a listing without its end line (the script
stopped, the connection dropped) is unreadable evidence, `error`, not a shorter list of files.
"""

from __future__ import annotations

import secrets
from typing import Any

from m7guard.checks.support.verdict import EvidenceError

END = "end"


def new_marker() -> str:
    return f"@@m7g-{secrets.token_hex(8)}"


# Prints each file named on its command line as `cat FILE; echo` would, after a line
# `<marker> FILE` (the marker in the variable m). RS is a regular expression that never
# matches (a byte, then the start of the text), so each file is one record, every byte of it;
# an empty file has none. getline fails on a file it cannot read: the marker line is there
# and no contents, as cat gave.
PRINT_FILES_AWK = (
    'BEGIN { RS = "\\001^"; for (i = 1; i < ARGC; i++) { f = ARGV[i]; print m " " f; '
    'while ((getline r < f) > 0) printf "%s", r; close(f); print "" } exit }'
)


def cat_script(patterns: str, marker: str) -> str:
    """Shell that prints every existing regular file matching the shell patterns. The shell
    picks the files with its own `[ -f ]`; one awk process prints them all, since a process per
    file is what a listing costs most on a node slow to start processes (one under
    emulation). The end line follows only when awk ran to its end."""
    return (f'set --; for f in {patterns}; do [ -f "$f" ] && set -- "$@" "$f"; done; '
            f"awk -v m='{marker}' '{PRINT_FILES_AWK}' \"$@\" && echo \"{marker} {END}\"")


def split_files(out: str, marker: str) -> dict[str, str]:
    """The files of cat_script's output, by path, in the order listed."""
    files: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in out.splitlines():
        if line.startswith(marker + " "):
            if current is not None:
                files[current] = "\n".join(body)
            current, body = line[len(marker) + 1:], []
            if current == END:
                return files
        else:
            body.append(line)
    started = len(files) + (current is not None)
    raise EvidenceError(f"the file listing ended early ({started} file(s) begun, no end line): "
                        "the files could not be read")


def read_files(host: Any, patterns: str) -> dict[str, str]:
    """Contents of every existing file matching the shell patterns, in one round trip."""
    marker = new_marker()
    return split_files(host.run("sh -c %s", cat_script(patterns, marker)).stdout, marker)
