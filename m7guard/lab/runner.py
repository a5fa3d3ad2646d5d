"""Running the lab's external commands with errors a user can act on."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from m7guard.errors import LabError


def run(
    cmd: Sequence[str],
    *,
    what: str,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`; on failure raise LabError naming `what` with the end of its output."""
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            input=input_bytes,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{what}: {cmd[0]} is not installed (run `make deps`)") from exc
    except subprocess.TimeoutExpired as exc:
        shown = " ".join(cmd[:3])
        raise LabError(f"{what}: no answer after {timeout:.0f} s ({shown} ...)") from exc
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise LabError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result
