"""Fixtures for evidence bundles: a working directory with the waivers file and an
inventory, the audit directory, keys made in tmp_path, and packing with a key file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from evidencekit import POLICIES, WAIVERS_YML, run, write_audit_dir


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the current directory, holding the waivers file the results name
    (waivers.yml) and an inventory directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "waivers.yml").write_text(WAIVERS_YML)
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  hosts:\n    node1:\n    node2:\n")
    (inv / "group_vars" / "all.yml").write_text("ansible_user: admin\n")
    return tmp_path


@pytest.fixture
def audit_dir(workdir: Path) -> Path:
    return write_audit_dir(workdir / "audit")


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """`m7guard evidence keygen` of a kind into its own directory: (private, public)."""

    def make(kind: str = "ed25519", name: str = "") -> tuple[Path, Path]:
        out = tmp_path / f"keys-{kind}{name}"
        result = run("evidence", "keygen", "--out", out, "--type", kind)
        assert result.exit_code == 0, result.output
        return out / "evidence-signing.key", out / "evidence-signing.pub"

    return make


@pytest.fixture
def pack(workdir: Path) -> Callable[..., Path]:
    """Pack the audit directory with a key file; returns the bundle."""

    def do(audit: Path, key: Path, out: str = "bundle.tar.gz", *extra: str | Path) -> Path:
        bundle = workdir / out
        result = run(
            "evidence",
            "pack",
            audit,
            "-o",
            bundle,
            "--key",
            key,
            "--inventory",
            workdir / "inventory",
            "--policies",
            POLICIES,
            *extra,
        )
        assert result.exit_code == 0, result.output
        return bundle

    return do
