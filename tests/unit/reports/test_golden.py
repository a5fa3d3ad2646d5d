"""Every format rendered from one results file is byte for byte what is recorded in
tests/fixtures/reports/: the outputs of that file as m7guard rendered them before its code
was put in layers (results, reports and console moved; events typed). A report that changes
shape shows here first; when a change is meant, render the fixture again and review the diff:

    m7guard report --format all tests/fixtures/reports/results.json
"""

from __future__ import annotations

from pathlib import Path

import pytest

from m7guard.reports import FORMATS, render
from m7guard.results import Results

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "reports"
FILES = ("results.json", "report.html", "junit.xml", "results.sarif", "assessment-results.json",
         "m7guard.prom", "poam.json")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    written = render(Results.load(GOLDEN / "results.json"), FORMATS, out)
    assert sorted(p.name for p in written.values()) == sorted(FILES)
    return out


@pytest.mark.parametrize("name", FILES)
def test_the_format_is_byte_identical_to_the_recorded_output(rendered: Path, name: str):
    assert (rendered / name).read_bytes() == (GOLDEN / name).read_bytes()
