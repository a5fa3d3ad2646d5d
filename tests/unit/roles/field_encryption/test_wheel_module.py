"""m7guard_wheel: a reproducible wheel of this project, built outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from m7guard.locate import SHIPPED

ROOT = Path(__file__).resolve().parents[4]


def test_same_sources_give_the_same_wheel_and_the_checkout_is_untouched(wheel_module, tmp_path):
    watched = ("build", "dist", "m7guard.egg-info")
    before = {name: (ROOT / name).exists() for name in watched}
    # m7guard's wheel: its packages, and the directories setup.py puts into it
    sources = ["field_encryption", "m7guard", *SHIPPED]
    first = wheel_module.build(ROOT, tmp_path / "a", sources)
    second = wheel_module.build(ROOT, tmp_path / "b", sources)
    assert first["sha256"] == second["sha256"]
    assert first["filename"] == second["filename"] and first["name"] == "m7guard"
    names = zipfile.ZipFile(first["path"]).namelist()
    assert "field_encryption/cli.py" in names and "field_encryption/scan.py" in names
    assert {"m7guard/_data/policies/profiles/baseline.yml", "m7guard/_data/playbooks/site.yml",
            "m7guard/_data/plugins/filter/m7i_profile.py",
            "m7guard/_data/roles/m7i_profile/tasks/main.yml"} <= set(names)
    assert not any("__pycache__" in n for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "field-encrypt = field_encryption.cli:main" in zipfile.ZipFile(
        first["path"]).read(entry_points).decode()
    assert {name: (ROOT / name).exists() for name in watched} == before  # built elsewhere
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first["filename"]]


def test_a_wheel_file_is_used_as_it_is(wheel_module, tmp_path):
    built = wheel_module.build(ROOT, tmp_path / "w", ["field_encryption"],
                               ROOT / "packaging" / "field-encryption")
    again = wheel_module.build(Path(built["path"]), tmp_path / "unused", [])
    assert again == built


def test_a_file_that_is_not_a_wheel_is_refused(wheel_module, tmp_path):
    fake = tmp_path / "field_encryption-0.1.0-py3-none-any.whl"
    fake.write_text("not a zip")
    with pytest.raises(wheel_module.WheelError, match="cannot be read as a wheel"):
        wheel_module.build(fake, tmp_path / "out", [])


def test_a_directory_without_pyproject_is_refused(wheel_module, tmp_path):
    with pytest.raises(wheel_module.WheelError, match=r"no pyproject\.toml"):
        wheel_module.build(tmp_path, tmp_path / "out", ["field_encryption"])


def test_the_field_encryption_distribution_is_the_library_alone(wheel_module, tmp_path):
    built = wheel_module.build(ROOT, tmp_path / "fe", ["field_encryption"],
                               ROOT / "packaging" / "field-encryption")
    assert built["filename"].startswith("field_encryption-") and built["name"] == "field_encryption"
    # the role refuses a node whose python3 is older, before it changes anything (Debian 11's
    # 3.9 is the oldest of docs/platforms.md), and takes the dependencies from Debian packages
    # only where they meet these floors
    assert built["requires_python"] == ">=3.9"
    assert built["requires_floors"] == {"cryptography": "38", "boto3": "1.26"}
    wheel = zipfile.ZipFile(built["path"])
    names = wheel.namelist()
    assert {n.split("/")[0] for n in names} == {"field_encryption",
                                                  built["filename"][:-len("-py3-none-any.whl")]
                                                  + ".dist-info"}
    meta = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Name: field-encryption" in meta
    required = [line.split(":", 1)[1].strip() for line in meta.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert required == ["cryptography>=38", "boto3>=1.26"]
    extras = {line.split(":", 1)[1].strip() for line in meta.splitlines()
              if line.startswith("Provides-Extra:")}
    assert extras == {"parquet", "executor", "spark"}
    # the extras read requirements/, the file m7guard's own extras read too
    assert 'Requires-Dist: pyarrow>=16; extra == "executor"' in meta
    entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "field-encrypt = field_encryption.cli:main" in entry_points
    assert "m7guard" not in entry_points
    from field_encryption import __version__
    assert f"Version: {__version__}" in meta


# the distributions cryptography and boto3 require, transitively (extras and markers that
# do not hold here left out)
CLOSURE = """
import json, re
from importlib.metadata import distribution
from pip._vendor.packaging.requirements import Requirement
seen, todo = set(), ["cryptography", "boto3"]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    for text in distribution(name).requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(re.sub(r"[-_.]+", "-", req.name).lower())
print(json.dumps(sorted(seen)))
"""


def test_the_field_encryption_wheel_installs_alone_and_round_trips(wheel_module, tmp_path):
    """In a fresh venv, without a package index (the dependencies' wheels come from
    tests/tools/wheelhouse/host, which scripts/test-tools.sh downloads): the wheel brings
    cryptography and boto3 (and theirs) and nothing of m7guard, and its field-encrypt
    round-trips a record."""
    house = ROOT / "tests" / "tools" / "wheelhouse" / "host"
    if not (house.parent / ".complete").is_file():
        pytest.fail("tests/tools/wheelhouse is missing: run scripts/test-tools.sh", pytrace=False)
    built = wheel_module.build(ROOT, tmp_path / "fe", ["field_encryption"],
                               ROOT / "packaging" / "field-encryption")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, "install", "--quiet", "--no-index", "--find-links", str(house),
                           built["path"]], capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True,
                            check=True, timeout=120).stdout
    installed = {d["name"].lower() for d in json.loads(listed)}
    assert {"field-encryption", "cryptography", "boto3"} <= installed
    # everything else is what cryptography and boto3 need, as their own metadata says
    closure = subprocess.run([str(venv / "bin" / "python"), "-c", CLOSURE],
                             capture_output=True, text=True, check=True, timeout=120).stdout
    needed = set(json.loads(closure))
    assert installed - {"field-encryption", "pip", "setuptools"} <= needed, installed - needed
    tool = str(venv / "bin" / "field-encrypt")
    key, plain, sealed, opened = (tmp_path / n for n in ("k.json", "p.jsonl", "s.jsonl",
                                                          "o.jsonl"))
    plain.write_text(json.dumps({"_id": 1, "ssn": "078-05-1120"}) + "\n")
    for args in (["keys", "local-new", str(key)],
                 ["encrypt", str(plain), "-o", str(sealed), "--local-key", str(key),
                  "--table", "t", "-f", "ssn"],
                 ["decrypt", str(sealed), "-o", str(opened), "--local-key", str(key),
                  "--table", "t"]):
        run = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120,
                             check=False)
        assert run.returncode == 0, (args, run.stderr)
    assert "078-05-1120" not in sealed.read_text()
    assert json.loads(opened.read_text()) == {"_id": 1, "ssn": "078-05-1120"}


def _wheel_with(tmp_path: Path, *requirements: str) -> Path:
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\n"
                       + "".join(f"Requires-Dist: {r}\n" for r in requirements) + "\nbody\n")
    return path


def test_requirement_floors_skip_markers_and_read_the_lower_bound(wheel_module, tmp_path):
    path = _wheel_with(tmp_path, "Cryptography>=41.0", 'pyarrow>=16; extra == "parquet"',
                       'tomli>=1; python_version < "3.11"', "ansible-core<2.20,>=2.19",
                       "boto3[crt]>=1.26", "rich", "six<2")
    assert wheel_module.requires_floors(path) == {
        "cryptography": "41.0", "ansible-core": "2.19", "boto3": "1.26", "rich": "", "six": ""}
    assert wheel_module.requires_floors(_wheel_with(tmp_path)) == {}
