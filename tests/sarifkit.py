"""The official SARIF validator (@microsoft/sarif-multitool, which scripts/test-tools.sh
installs), as the report tests run it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SARIF_TOOL = ROOT / "tests/tools/node_modules/.bin/sarif-multitool"


def findings(sarif: Path) -> list[str]:
    """The validator's error and warning lines on SARIF (it must run and finish)."""
    if not SARIF_TOOL.exists():
        pytest.fail("sarif-multitool is missing: run scripts/test-tools.sh", pytrace=False)
    proc = subprocess.run(
        [str(SARIF_TOOL), "validate", str(sarif)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Analysis completed successfully" in proc.stdout
    return [ln for ln in proc.stdout.splitlines() if ": error " in ln or ": warning " in ln]
