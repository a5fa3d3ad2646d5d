"""m7guard_wheel: a reproducible wheel of this project, built outside the checkout."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


def test_same_sources_give_the_same_wheel_and_the_checkout_is_untouched(wheel_module, tmp_path):
    watched = ("build", "dist", "m7guard.egg-info")
    before = {name: (ROOT / name).exists() for name in watched}
    first = wheel_module.build(ROOT, tmp_path / "a", ["field_encryption", "m7guard"])
    second = wheel_module.build(ROOT, tmp_path / "b", ["field_encryption", "m7guard"])
    assert first["sha256"] == second["sha256"]
    assert first["filename"] == second["filename"] and first["name"] == "m7guard"
    names = zipfile.ZipFile(first["path"]).namelist()
    assert "field_encryption/cli.py" in names and "field_encryption/scan.py" in names
    assert not any("__pycache__" in n for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "field-encrypt = field_encryption.cli:main" in zipfile.ZipFile(
        first["path"]).read(entry_points).decode()
    assert {name: (ROOT / name).exists() for name in watched} == before  # built elsewhere
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first["filename"]]


def test_a_wheel_file_is_used_as_it_is(wheel_module, tmp_path):
    built = wheel_module.build(ROOT, tmp_path / "w", ["field_encryption", "m7guard"])
    again = wheel_module.build(Path(built["path"]), tmp_path / "unused", [])
    assert again == built


def test_a_directory_without_pyproject_is_refused(wheel_module, tmp_path):
    with pytest.raises(wheel_module.WheelError, match=r"no pyproject\.toml"):
        wheel_module.build(tmp_path, tmp_path / "out", ["field_encryption"])
