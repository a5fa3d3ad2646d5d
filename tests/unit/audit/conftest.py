from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from m7guard.cli import cli

REPO = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def local_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine through ansible's local connection (read-only checks), plus `ghost`, a
    host on a closed 127.0.0.1 port that can never be reached."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    path.write_text(
        "---\nall:\n  children:\n    m7_nodes:\n      hosts:\n"
        "        localhost:\n          ansible_connection: local\n"
        "    untrusted:\n      hosts:\n        ghost:\n          ansible_host: 127.0.0.1\n"
        f"          ansible_port: {_closed_port()}\n          ansible_user: root\n"
    )
    return path


def run_audit_cli(*args: str) -> Result:
    """`m7guard audit ARGS`, with the kernel profile unless ARGS name one, so that these tests
    do not depend on the checks of other rule areas."""
    profile = [] if "--profile" in args else ["--profile", "kernel"]
    return CliRunner().invoke(cli, ["audit", *args, *profile], catch_exceptions=False)


@pytest.fixture
def audit_cli():
    return run_audit_cli


@pytest.fixture(scope="session")
def local_audit(local_inventory: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One audit of the local inventory in every format; returns its output directory."""
    out = tmp_path_factory.mktemp("audit")
    result = run_audit_cli(
        "-i",
        str(local_inventory),
        "--out",
        str(out),
        "--format",
        "all",
        "--policies",
        str(REPO / "policies"),
    )
    assert result.exit_code == 2, result.output
    return out
