"""Helpers for the evidence bundle tests: an audit directory with every report (from the
reports' test results), the CLI as installed, reading and repacking a bundle, and a DSSE PAE
written from the spec."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from unit.reports.conftest import make_results

from m7guard.cli import cli
from m7guard.reports import FORMATS, render

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"

WAIVERS_YML = """\
---
waivers:
  - rule: KERN-014
    hosts: node2
    justification: Edge node behind NAT
    expires: 2030-01-01
    approver: ciso
"""


def run(*args: str | Path) -> Result:
    """`m7guard ARGS` as the installed command runs it (exit codes included)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def write_audit_dir(out: Path, **changes: Any) -> Path:
    """What `m7guard audit --out OUT --format all` writes, for the reports' test results."""
    render(make_results(**changes), FORMATS, out)
    return out


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def rewrite(bundle: Path, files: Mapping[str, bytes], out: Path, extra: Any = ()) -> Path:
    """A tar.gz of files (and extra TarInfo, bytes pairs), as an attacker would repack it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    out.write_bytes(gzip.compress(raw.getvalue()))
    return out


def envelope(files: Mapping[str, bytes]) -> dict[str, Any]:
    return json.loads(files["statement.intoto.jsonl"])


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding, written from the spec for the tests."""
    return b" ".join(
        [
            b"DSSEv1",
            str(len(payload_type.encode())).encode(),
            payload_type.encode(),
            str(len(payload)).encode(),
            payload,
        ]
    )
