"""The verify-by-hand script of docs/evidence.md, run as written (bash, tar, jq, sha256sum,
openssl): it accepts a good bundle of either key kind and stops on a tampered one."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from evidencekit import REPO, members, rewrite

DOC = REPO / "docs" / "evidence.md"


def script() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- evidence-verify-by-hand -->\n```sh\n(.*?)```", text, re.S)
    assert match, "docs/evidence.md lost its verify-by-hand block"
    return match.group(1)


def by_hand(bundle: Path, public: Path, where: Path) -> subprocess.CompletedProcess:
    where.mkdir()
    env = {**os.environ, "BUNDLE": str(bundle), "PUB": str(public)}
    return subprocess.run(
        ["bash", "-c", script()], cwd=where, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_the_documented_commands_verify_a_bundle(
    kind: str, audit_dir: Path, make_key, pack, tmp_path: Path
) -> None:
    private, public = make_key(kind)
    result = by_hand(pack(audit_dir, private), public, tmp_path / "check")
    assert result.returncode == 0, result.stdout + result.stderr
    verified = "Signature Verified Successfully" if kind == "ed25519" else "Verified OK"
    assert verified in result.stdout
    assert "results.json: OK" in result.stdout


def test_the_documented_commands_stop_on_a_tampered_bundle(
    audit_dir: Path, make_key, pack, tmp_path: Path
) -> None:
    private, public = make_key()
    bundle = pack(audit_dir, private)
    files = members(bundle)

    changed = rewrite(bundle, {**files, "results.json": files["results.json"] + b" "},
                      tmp_path / "a.tar.gz")  # fmt: skip
    result = by_hand(changed, public, tmp_path / "a")
    assert result.returncode != 0 and "results.json: FAILED" in result.stdout

    extra = rewrite(bundle, {**files, "notes.txt": b"x"}, tmp_path / "b.tar.gz")
    result = by_hand(extra, public, tmp_path / "b")
    assert result.returncode != 0 and "notes.txt" in result.stdout

    # a statement changed with its manifest and subjects made to match: only the
    # signature can catch it
    env = json.loads(files["statement.intoto.jsonl"])
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["counts"]["fail"] = 0
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = rewrite(
        bundle,
        {**files, "statement.intoto.jsonl": json.dumps(env).encode()},
        tmp_path / "c.tar.gz",
    )
    result = by_hand(forged, public, tmp_path / "c")
    assert result.returncode != 0
    assert "Signature Verified Successfully" not in result.stdout
