"""The lab's IMDSv2 emulator (tests/fixtures/imds_emulator.py) on loopback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from kernel_tuning_kit import ROOT, load_module

imds = load_module("imds_emulator", ROOT / "tests/fixtures/imds_emulator.py")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "imds.log"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), imds.handler_for(imds.Metadata("m7i.xlarge", log)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", log
    finally:
        srv.shutdown()
        srv.server_close()


def _call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_token_then_type(server: tuple[str, Path]) -> None:
    base, log = server
    status, token = _call(base + "/latest/api/token", "PUT",
                          {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and len(token) > 20
    status, body = _call(base + "/latest/meta-data/instance-type",
                         headers={"X-aws-ec2-metadata-token": token})
    assert (status, body) == (200, "m7i.xlarge")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["status"], e["token_valid"]) for e in entries] == [
        ("PUT", 200, False), ("GET", 200, True)]
    assert token not in log.read_text()


@pytest.mark.parametrize("headers", [{}, {"X-aws-ec2-metadata-token": "forged"}])
def test_a_get_without_a_valid_token_is_refused(server: tuple[str, Path],
                                                headers: dict[str, str]) -> None:
    base, _ = server
    assert _call(base + "/latest/meta-data/instance-type", headers=headers)[0] == 401


@pytest.mark.parametrize("ttl", [None, "0", "21601", "abc"])
def test_a_token_needs_a_valid_ttl(server: tuple[str, Path], ttl: str | None) -> None:
    base, _ = server
    headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    assert _call(base + "/latest/api/token", "PUT", headers)[0] == 400
