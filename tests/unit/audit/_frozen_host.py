"""A pytest plugin for the audit's checks process (loaded with `-p _frozen_host` through
PYTEST_ADDOPTS): every host reads one frozen state instead of the live machine.

The first snapshot any process takes runs the real snapshot script on the host once and
stores its output in $M7G_FROZEN_SNAPSHOT; every later snapshot, of any host, in this audit
or a later one, parses that same output. Keys a check reads beyond the snapshot report "not
read" instead of reading the machine. So two audits compare the same input, whenever they
run and whatever changes on the machine meanwhile.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from m7guard.checks.support import plugin
from m7guard.checks.support.snapshot import HostSnapshot, build_script, parse_output

MARKER = "@@m7g-frozen"


def _frozen_output(host: Any, name: str, keys: Iterable[str]) -> str:
    path = Path(os.environ["M7G_FROZEN_SNAPSHOT"])
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # hosts are read in parallel threads and processes
        if not path.exists():
            out = host.run("sh -c %s", build_script(keys, MARKER)).stdout
            assert f"{MARKER} end" in out, out[-500:]
            path.write_text(out)
            with path.with_suffix(".reads").open("a") as reads:  # the live reads, for the test
                reads.write(f"{name}\n")
        return path.read_text()


def frozen_gather(
    host: Any, name: str, groups: tuple[str, ...] | None, keys: Iterable[str]
) -> HostSnapshot:
    snapshot = HostSnapshot(name=name, groups=groups)
    started = time.monotonic()
    parse_output(_frozen_output(host, name, keys), MARKER, snapshot)
    snapshot.duration = time.monotonic() - started
    return snapshot  # reader None: a key outside the snapshot is "not read", not read live


plugin.gather = frozen_gather
