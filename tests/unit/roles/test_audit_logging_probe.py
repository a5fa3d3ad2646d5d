"""The audit_logging role's read-only probe (roles/audit_logging/files/audit_logging_probe.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "audit_logging" / "files" / "audit_logging_probe.py"
_spec = importlib.util.spec_from_file_location("audit_logging_probe", SCRIPT)
assert _spec and _spec.loader
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)
ROOT_OWNED = os.geteuid() == 0  # files made by the test are root's only when it runs as root


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def test_files_lists_missing_different_and_wrong_mode(tmp_path: Path) -> None:
    same, other, loose = tmp_path / "same", tmp_path / "other", tmp_path / "loose"
    for path in (same, other, loose):
        path.write_text("content\n")
        path.chmod(0o640)
    loose.chmod(0o644)
    specs = [
        {"path": str(same), "sha1": _sha1("content\n"), "mode": "0640"},
        {"path": str(other), "sha1": _sha1("something else\n"), "mode": "0640"},
        {"path": str(loose), "sha1": _sha1("content\n"), "mode": "0640"},
        {"path": str(tmp_path / "missing"), "sha1": _sha1(""), "mode": "0644"},
    ]
    to_write = set(probe.step_files({"files": specs})["to_write"])
    expected = {str(other), str(loose), str(tmp_path / "missing")}
    assert to_write == (expected if ROOT_OWNED else expected | {str(same)})


def test_dirs_to_fix(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(mode=0o700)
    bad.mkdir(mode=0o755)
    good.chmod(0o700)
    bad.chmod(0o755)
    wanted = [{"path": str(good), "mode": "0700"}, {"path": str(bad), "mode": "0700"},
              {"path": str(tmp_path / "none"), "mode": "0700"}]
    found = probe.dirs_to_fix(wanted)
    assert str(bad) in found and str(tmp_path / "none") in found
    assert (str(good) in found) is not ROOT_OWNED


def test_aide_and_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "aide.db"
    args = json.dumps({"database": str(db), "dirs": []})
    run = [sys.executable, str(SCRIPT), "aide", args]
    assert json.loads(subprocess.run(run, capture_output=True, text=True, check=True).stdout) == {
        "database": False, "dirs": []}
    db.write_text("x")
    assert json.loads(subprocess.run(run, capture_output=True, text=True,
                                     check=True).stdout)["database"] is True


def test_kernel_never_asks_auditctl_in_a_container(tmp_path: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(probe, "run", lambda argv: (calls.append(argv), (1, "", ""))[1])
    merged = tmp_path / "audit.rules"
    merged.write_text("-D\n-w /etc/passwd -p wa -k identity\n-a always,exit -S all -k x\n-e 2\n")
    out = probe.step_kernel({"merged": str(merged), "container": True})
    assert out["persisted_count"] == 2
    assert all(argv[0] != "auditctl" for argv in calls)
    probe.step_kernel({"merged": str(merged), "container": False})
    assert ["auditctl", "-s"] in calls and ["auditctl", "-l"] in calls


def test_node_reads_the_cluster_and_the_cldb_role_of_a_data_fabric_node(tmp_path: Path,
                                                                       monkeypatch) -> None:
    """The node's cluster is the first entry of mapr-clusters.conf (a comment or a blank line
    before it is no cluster), and the role file /opt/mapr/roles/cldb makes it a CLDB node:
    what the role's Data Fabric tasks choose their speaker by, as the audit does."""
    home = tmp_path / "mapr"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "mapr-clusters.conf").write_text(
        "# clusters this node knows\n\nmy.cluster.com secure=true cldb1:7222\nother.com c2:7222\n")
    args = {"mapr_home": str(home), "log_dir": str(tmp_path)}
    monkeypatch.setattr(probe, "step_setuid", lambda _args: {"programs": []})  # no find /
    mapr = probe.step_node(args)["mapr"]
    assert (mapr["cluster"], mapr["cldb"]) == ("my.cluster.com", False)
    (home / "roles").mkdir()
    (home / "roles" / "cldb").touch()
    assert probe.step_node(args)["mapr"]["cldb"] is True
