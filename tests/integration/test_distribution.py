"""The m7guard wheel, installed in a fresh virtual environment without a package index, works as
the checkout does: it validates its catalog (against the checkout's proofs, which the wheel does
not ship) and audits a lab node with the same verdicts as the checkout's m7guard, including
the size-derived PERF rules, whose numbers come from the roles the wheel carries.

It runs while nothing else changes the lab (marker whole_lab), so the two audits read the same
node at rest. The dependencies come from tests/tools/wheelhouse/framework
(scripts/test-tools.sh downloads them); the wheel is built here from the checkout."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from m7guard.locate import SHIPPED
from m7guard.results import Results

pytestmark = [pytest.mark.lab, pytest.mark.whole_lab]

ROOT = Path(__file__).resolve().parents[2]
HOUSE = ROOT / "tests" / "tools" / "wheelhouse"
# a container node, and vm1, where the size-derived PERF rules apply (on a container they are
# notapplicable: the network sysctls are the host's)
NODES = "node1,vm1"
PROFILE = "tuning"  # the kernel and the PERF rules


def _wheel_module():
    path = ROOT / "plugins" / "modules" / "m7guard_wheel.py"
    spec = importlib.util.spec_from_file_location("_m7guard_wheel_for_distribution", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv holding the m7guard wheel and its dependencies."""
    if not (HOUSE / ".complete").is_file() or not (HOUSE / "framework").is_dir():
        pytest.fail("tests/tools/wheelhouse/framework is missing: run scripts/test-tools.sh",
                    pytrace=False)
    work = tmp_path_factory.mktemp("distribution")
    built = _wheel_module().build(ROOT, work / "wheel", ["m7guard", "field_encryption", *SHIPPED])
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "--no-index", "--find-links", str(HOUSE / "framework"),
         built["path"]],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # only the venv's commands: nothing of the checkout is on the path or the Python path
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV"} and not k.startswith("M7GUARD_")}
    env["PATH"] = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
    env["COLUMNS"] = "200"
    return subprocess.run([str(bin_dir / "m7guard"), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=1200, check=False)


def test_the_installed_package_reads_its_own_copy(installed: Path, tmp_path: Path):
    code = ("import m7guard, m7guard.locate as l; "
            "print(m7guard.__file__); print(l.from_checkout()); print(l.shipped('roles'))")
    out = subprocess.run([str(installed / "python"), "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, check=True).stdout.split("\n")
    assert not out[0].startswith(str(ROOT)), out
    assert out[1] == "False"
    assert out[2].endswith("site-packages/m7guard/_data/roles")


def test_the_installed_wheel_validates_its_catalog(installed: Path, tmp_path: Path):
    proc = _run(installed, tmp_path, "catalog", "validate", "--tests", str(ROOT / "tests"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "catalog valid: " in proc.stdout
    assert "every rule has a fail-proof and a pass-proof" in proc.stdout


def test_the_installed_wheel_audits_a_lab_node_as_the_checkout_does(
    lab, installed: Path, tmp_path: Path
):
    args = ("audit", "-i", str(lab.inventory), "--limit", NODES, "--profile", PROFILE,
            "--fail-on", "none", "--format", "json")
    wheel = _run(installed, tmp_path, *args, "--out", str(tmp_path / "wheel"))
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    checkout = lab.m7guard(*args, "--out", str(tmp_path / "checkout"))
    assert checkout.returncode == 0
    got = {name: Results.load(tmp_path / name / "results.json") for name in ("wheel", "checkout")}
    verdicts = {name: {(r["host"], r["rule"]): r["state"] for r in res.data["results"]}
                for name, res in got.items()}
    assert verdicts["wheel"] == verdicts["checkout"]
    rules = {rule for _, rule in verdicts["wheel"]}
    assert {"PERF-005", "PERF-006"} <= rules
    assert {host for host, _ in verdicts["wheel"]} == {"node1", "vm1"}
    for name in ("PERF-005", "PERF-006"):
        result = next(r for r in got["wheel"].data["results"]
                      if r["rule"] == name and r["host"] == "vm1")
        # judged against the size the roles' numbers give, whatever the node's state
        assert result["state"] in {"pass", "fail"}, json.dumps(result, indent=1)[:2000]
        assert result["evidence"]["instance"]["source"] == "inventory"
        assert result["evidence"]["target"], json.dumps(result, indent=1)[:2000]
