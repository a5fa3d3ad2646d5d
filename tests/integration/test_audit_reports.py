"""`m7guard audit` against the whole lab writes every format, and each format is checked by
the tool its consumers use: headless Chromium for the HTML, compliance-trestle for OSCAL, the
official SARIF validator (@microsoft/sarif-multitool, tests/sarifkit.py),
junitparser for JUnit. The inventory has one extra host on a closed 127.0.0.1 port; node2
carries a waiver claim as a host fact (evidence only: a host cannot waive its own rules) and a
waivers file holds one valid and one expired waiver."""

from __future__ import annotations

import datetime as dt
import os
import socket
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml, Skipped
from sarifkit import findings

from m7guard.results import Results

pytestmark = [pytest.mark.lab, pytest.mark.whole_lab]

ROOT = Path(__file__).resolve().parents[2]
# the checkout's docs/, where the SARIF report's tool and rule help links point
DOCS_URL = (ROOT / "docs").as_uri()
FACT = "/etc/ansible/facts.d/m7guard_waivers.fact"
FORMATS = (
    "results.json",
    "report.html",
    "junit.xml",
    "results.sarif",
    "assessment-results.json",
    "m7guard.prom",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def audit_out(lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    work = tmp_path_factory.mktemp("lab-audit")
    inventory = yaml.safe_load(lab.inventory.read_text())
    inventory["all"]["hosts"]["ghost"] = {
        "ansible_host": "127.0.0.1",
        "ansible_port": _closed_port(),
    }
    inv = work / "hosts.yml"
    inv.write_text(yaml.safe_dump(inventory))
    today = dt.date.today()
    waivers = work / "waivers.yml"
    waivers.write_text(
        yaml.safe_dump(
            {
                "waivers": [
                    {
                        "rule": "KERN-016",
                        "hosts": "client*",
                        "approver": "ciso@example.com",
                        "justification": "Client hosts answer broadcasts for legacy discovery.",
                        "expires": (today + dt.timedelta(days=30)).isoformat(),
                    },
                    {
                        "rule": "KERN-012",
                        "hosts": "node*",
                        "approver": "ciso@example.com",
                        "justification": "Exception for the old router role, now over.",
                        "expires": (today - dt.timedelta(days=1)).isoformat(),
                    },
                ]
            }
        )
    )
    fact = (
        '{"waivers": [{"rule": "KERN-014", "approver": "platform-lead",'
        ' "justification": "Martian logging floods the journal on the replication node",'
        f' "expires": "{(today + dt.timedelta(days=7)).isoformat()}"}}]}}'
    )
    lab.ssh("node2", f"mkdir -p /etc/ansible/facts.d && printf %s '{fact}' > {FACT}")
    try:
        out = work / "out"
        proc = lab.m7guard(
            "audit",
            "-i",
            str(inv),
            "--profile",
            "kernel",
            "--waivers",
            str(waivers),
            "--out",
            str(out),
            "--format",
            "all",
            "--docs-url",
            DOCS_URL,
            check=False,
        )
    finally:
        lab.ssh("node2", f"rm -f {FACT}")
    return out, proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def results(audit_out: tuple[Path, int, str]) -> Results:
    return Results.load(audit_out[0] / "results.json")


def test_every_format_is_written(audit_out: tuple[Path, int, str]) -> None:
    out, code, text = audit_out
    assert code == 2, text
    for name in FORMATS:
        assert (out / name).stat().st_size > 500, name


def test_unreachable_host_does_not_stop_the_others(results: Results, lab) -> None:
    by_host = results.by_host()
    assert {r["state"] for r in by_host["ghost"]} == {"error"}
    assert all("host unreachable" in r["message"] for r in by_host["ghost"])
    lab_hosts = set(yaml.safe_load(lab.inventory.read_text())["all"]["hosts"])
    assert lab_hosts <= set(by_host)
    for host in lab_hosts:
        assert len(by_host[host]) == len(results.rules) == 16
        assert "error" not in {r["state"] for r in by_host[host]}, host


def test_waivers_from_file_and_host_fact(results: Results) -> None:
    cells = {(r["host"], r["rule"]): r for r in results.results}
    filed = cells[("client1", "KERN-016")]
    assert filed["state"] == "waived" and filed["evaluated_state"] in ("pass", "fail")
    # a host cannot waive a rule for itself: node2's record is a claim, kept as evidence
    fact = cells[("node2", "KERN-014")]
    assert fact["state"] in ("pass", "fail") and fact["waiver"] is None
    claim = fact["evidence"]["host_claimed_waiver"]
    assert claim["source"] == f"node2:{FACT}"
    assert claim["justification"].startswith("Martian logging floods")
    assert any("node2 claims a waiver of KERN-014" in w for w in results.data["warnings"])
    assert cells[("node1", "KERN-014")]["state"] != "waived"
    assert all(cells[(h, "KERN-012")]["state"] != "waived" for h in ("node1", "node2", "node3"))
    assert any("KERN-012 was evaluated on node1" in w for w in results.data["warnings"])


def _png_pixels(path: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    pixels = [tuple(r[x : x + 3]) for r in rows for x in range(0, stride, bpp)]
    return width, height, pixels


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        for d in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
            if os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
    pytest.fail("chromium is not installed: run scripts/test-tools.sh", pytrace=False)


def test_html_renders_in_headless_chromium(
    audit_out: tuple[Path, int, str], tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,1600",
                f"--screenshot={shot}",
                (audit_out[0] / "report.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1280, 1600)
    colours = Counter(pixels)
    non_white = sum(n for c, n in colours.items() if c != (255, 255, 255))
    assert len(colours) > 200, len(colours)
    assert non_white > 0.10 * len(pixels), non_white
    # the red of failing cells and the purple of errors are on screen
    assert any(r > 180 and g < 70 and b < 70 for r, g, b in colours)
    assert any(r > 100 and g < 110 and b > 180 for r, g, b in colours)


def test_oscal_validates_with_compliance_trestle(
    audit_out: tuple[Path, int, str], results: Results
) -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    model = AssessmentResults.oscal_read(audit_out[0] / "assessment-results.json")
    assert len(model.results) == len(results.data["profile"]["frameworks"])
    for result in model.results:
        assert len(result.observations) == len(results.results)
        assert result.findings


def test_sarif_passes_the_official_validator(audit_out: tuple[Path, int, str]) -> None:
    assert findings(audit_out[0] / "results.sarif") == []


def test_junit_counts_equal_results(audit_out: tuple[Path, int, str], results: Results) -> None:
    xml = JUnitXml.fromfile(str(audit_out[0] / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    kinds = Counter(type(r).__name__ for case in cases for r in case.result)
    counts = results.counts()
    assert len(cases) == len(results.results)
    assert kinds[Failure.__name__] == counts["fail"]
    assert kinds[Error.__name__] == counts["error"]
    assert kinds[Skipped.__name__] == counts["notapplicable"] + counts["waived"]
    passed = len(cases) - sum(kinds.values())
    assert passed == counts["pass"]


def test_prometheus_file_has_a_status_per_result(
    audit_out: tuple[Path, int, str], results: Results
) -> None:
    text = (audit_out[0] / "m7guard.prom").read_text()
    status = [ln for ln in text.splitlines() if ln.startswith("m7guard_rule_status{")]
    assert len(status) == len(results.results)
    assert 'm7guard_host_reachable{host="ghost",profile="kernel"} 0' in text
    assert 'm7guard_host_reachable{host="node1",profile="kernel"} 1' in text
