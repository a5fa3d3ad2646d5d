"""m7guard.locate: a checkout reads its own catalog, roles and playbooks; an installed package,
the copy setup.py puts into the wheel (tests/integration/test_distribution.py installs one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from m7guard import locate

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_its_own_directories():
    assert locate.from_checkout()
    assert locate.shipped_root() == ROOT
    for name in locate.SHIPPED:
        assert locate.shipped(name) == ROOT / name and (ROOT / name).is_dir()


def test_outside_a_checkout_the_packaged_copy_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(locate, "SOURCE_TREE", tmp_path)  # site-packages: no pyproject.toml
    assert not locate.from_checkout()
    assert locate.shipped("roles") == locate.PACKAGED / "roles"


def test_only_what_is_shipped_can_be_asked_for():
    with pytest.raises(ValueError, match=r"'tests' is not shipped with m7guard"):
        locate.shipped("tests")
