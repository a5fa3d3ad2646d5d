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


def cat_script(patterns: str, marker: str) -> str:
    """Shell that prints every existing regular file matching the shell patterns."""
    return (f'for f in {patterns}; do [ -f "$f" ] || continue; echo "{marker} $f"; cat "$f"; '
            f'echo; done; echo "{marker} {END}"')


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
