from __future__ import annotations

from pathlib import Path

import pytest
from inventorykit import make_quick_root


@pytest.fixture(scope="session")
def quick_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_quick_root(tmp_path_factory.mktemp("root"))
