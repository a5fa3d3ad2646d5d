from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from m7guard.cli import cli

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    """A private copy of the shipped policies/ to break on purpose."""
    dest = tmp_path / "policies"
    shutil.copytree(POLICIES, dest)
    return dest


def _edit_yaml(path: Path, change: Callable[[Any], Any]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def edit_yaml() -> Callable[[Path, Callable[[Any], Any]], None]:
    """Load a YAML file, let a function change the data, write it back."""
    return _edit_yaml


@pytest.fixture
def shipped_policies() -> Path:
    return POLICIES


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run
