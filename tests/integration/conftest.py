"""The lab that integration tests run against.

The `lab` fixture brings the local lab up once per test session (`m7guard lab up`, idempotent)
and hands tests its inventory and SSH helpers. A missing prerequisite fails the tests with
its message: lab tests are never skipped. The lab is taken down when the session ends unless
M7GUARD_KEEP_LAB=1. Tests use their own image cache (M7GUARD_CACHE_DIR, default
/var/cache/m7guard-test/<checkout hash>) so that a test that purges it never touches an
operator's cache, nor the image of a lab run from another checkout.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from labkit import BIN, ROOT, LabHandle, lab_paths, run_m7guard

_LAB_USED = False


@pytest.fixture(scope="session")
def lab() -> LabHandle:
    global _LAB_USED
    _LAB_USED = True
    run_m7guard("lab", "up")
    return LabHandle(root=ROOT, inventory=lab_paths().inventory)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab lifecycle tests (which take the lab down and up) run before everything else."""
    first = [i for i in items if i.get_closest_marker("lab_lifecycle")]
    rest = [i for i in items if not i.get_closest_marker("lab_lifecycle")]
    items[:] = first + rest



def pytest_sessionfinish(session: pytest.Session) -> None:
    if _LAB_USED and os.environ.get("M7GUARD_KEEP_LAB") != "1":
        subprocess.run([str(BIN / "m7guard"), "lab", "down"], cwd=ROOT, capture_output=True,
                       timeout=600, check=False)
