"""The collection's m7guard_files module (plugins/modules) on a temporary tree: whole files,
marked blocks, settings in a file, directories and modes, in check mode and for real."""

from __future__ import annotations

import grp
import os
from pathlib import Path
from typing import Any

import modulekit
import pytest
from kernel_tuning_kit import ROOT, load_module
from modulekit import Done, FakeModule

PLUGINS = ROOT / "plugins"
# the module imports its helpers by the collection's name, as Ansible ships them to a node
fileio = load_module("ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio",
                     PLUGINS / "module_utils/m7guard_fileio.py")
files_mod = load_module("m7guard_files", PLUGINS / "modules/m7guard_files.py")
# a group other than root's that every Debian system has
OTHER_GROUP = "adm"


def run(params: dict[str, Any], check_mode: bool = False) -> Done:
    return modulekit.run(files_mod, FakeModule(params, check_mode))


def _tree(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        out[str(path)] = (st.st_mode, st.st_uid, st.st_gid, data)
    return out


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.fail("m7guard_files sets owners: these tests run as root, as the suite does")


def test_files_whole_and_block(tmp_path: Path) -> None:
    env = tmp_path / "opt/mapr/conf/env_override.sh"
    env.parent.mkdir(parents=True)
    env.write_text("#!/bin/bash\nexport MAPR_SUBNETS=10.0.0.0/8\n")
    env.chmod(0o750)
    items = [
        {"path": str(tmp_path / "etc/security/limits.d/90-m7guard-mapr.conf"),
         "content": "mapr soft nofile 65536\n"},
        {"path": str(tmp_path / "usr/local/sbin/helper"), "content": "#!/bin/sh\n", "mode": "0755"},
        {"path": str(env), "marker": "m7guard kernel_tuning",
         "content": 'export MAPR_MEMORY_OPTS="-Xmx1024m"\n'},
    ]
    dry = run({"files": items}, check_mode=True)
    assert dry.result["changed"] and len(dry.result["changed_files"]) == 3
    assert not (tmp_path / "etc/security").exists()
    done = run({"files": items})
    assert done.result["changed_files"] == [i["path"] for i in items]
    assert (tmp_path / "usr/local/sbin/helper").stat().st_mode & 0o777 == 0o755
    text = env.read_text()
    assert text.startswith("#!/bin/bash\nexport MAPR_SUBNETS=10.0.0.0/8\n# BEGIN m7guard")
    assert env.stat().st_mode & 0o777 == 0o750  # a shared file keeps its mode
    assert run({"files": items}).result["changed"] is False
    items[2]["content"] = 'export MAPR_MEMORY_OPTS="-Xmx2048m"\n'
    run({"files": items})
    text = env.read_text()
    assert text.count("# BEGIN m7guard kernel_tuning") == 1 and "-Xmx2048m" in text
    assert "-Xmx1024m" not in text and "MAPR_SUBNETS" in text


def test_settings_replace_matching_lines_and_append_the_others(tmp_path: Path,
                                                               root_only: None) -> None:
    defs = tmp_path / "login.defs"
    defs.write_text("# PASS_MAX_DAYS is the age\nPASS_MAX_DAYS\t99999\nUMASK\t\t022\n"
                    "ENCRYPT_METHOD SHA512\n")
    item = {"path": str(defs), "settings": [
        {"regexp": r"^\s*PASS_MAX_DAYS\s", "line": "PASS_MAX_DAYS\t90"},
        {"regexp": r"^\s*UMASK\s", "line": "UMASK\t027"},
        {"regexp": r"^\s*SHA_CRYPT_MIN_ROUNDS\s", "line": "SHA_CRYPT_MIN_ROUNDS\t65536"},
    ]}
    before = _tree(tmp_path)
    dry = run({"files": [item]}, check_mode=True)
    assert dry.result["changed_files"] == [str(defs)] and _tree(tmp_path) == before
    assert "PASS_MAX_DAYS\t90" in dry.result["diff"][0]["after"]
    run({"files": [item]})
    assert defs.read_text() == ("# PASS_MAX_DAYS is the age\nPASS_MAX_DAYS\t90\nUMASK\t027\n"
                                "ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS\t65536\n")
    assert run({"files": [item]}).result["changed"] is False


def test_modes_owners_and_directories(tmp_path: Path, root_only: None) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_text("root:*:1::::::\n")
    shadow.chmod(0o644)
    other = grp.getgrnam(OTHER_GROUP).gr_gid
    items = [
        {"path": str(shadow), "mode": "0640", "group": OTHER_GROUP},
        {"path": str(tmp_path / "cron.d"), "state": "directory", "mode": "0700"},
        {"path": str(tmp_path / "cron.allow"), "content": "root\n", "mode": "0640",
         "group": OTHER_GROUP},
    ]
    before = _tree(tmp_path)
    dry = run({"files": items}, check_mode=True)
    assert dry.result["changed_files"] == [i["path"] for i in items]
    assert _tree(tmp_path) == before
    assert dry.result["diff"][0]["after"] == f"mode 0640 owner root group {OTHER_GROUP}\n"
    run({"files": items})
    st = shadow.stat()
    assert (st.st_mode & 0o777, st.st_gid, shadow.read_text()) == (0o640, other,
                                                                   "root:*:1::::::\n")
    assert (tmp_path / "cron.d").is_dir() and (tmp_path / "cron.d").stat().st_mode & 0o777 == 0o700
    allow = (tmp_path / "cron.allow").stat()
    assert (allow.st_mode & 0o777, allow.st_gid) == (0o640, other)
    assert run({"files": items}).result["changed"] is False
    os.chmod(tmp_path / "cron.d", 0o755)  # a later change is found and undone
    again = run({"files": items})
    assert again.result["changed_files"] == [str(tmp_path / "cron.d")]
    assert (tmp_path / "cron.d").stat().st_mode & 0o777 == 0o700


def test_bad_items_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = {"path": str(tmp_path / "written-first"), "content": "x\n"}
    done = run({"files": [
        good,
        {"path": "etc/x", "content": ""},
        {"path": str(tmp_path / "y"), "content": "", "mode": "9"},
        {"path": str(tmp_path / "missing"), "mode": "0600"},
        {"path": str(tmp_path / "z"), "content": "", "owner": "no-such-user-m7guard"},
        {"path": str(tmp_path / "w"), "settings": [{"regexp": "(", "line": "x"}]},
        {"path": str(tmp_path / "v"), "content": "", "colour": "blue"},
    ]})
    assert done.failed
    msg = done.result["msg"]
    for expected in ("path must be absolute", "is not octal", "does not exist",
                     "no owner 'no-such-user-m7guard'", "settings[0] needs a regexp",
                     "unknown keys colour"):
        assert expected in msg, (expected, msg)
    assert not (tmp_path / "written-first").exists()


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    link = tmp_path / "issue"
    link.symlink_to(target)
    done = run({"files": [{"path": str(link), "content": "notice\n"}]})
    assert done.failed and "symbolic link" in done.result["msg"]
    assert target.read_text() == "kept\n"


def test_replace_text_keeps_the_owner_and_mode_and_leaves_no_temporary_file(
    tmp_path: Path, root_only: None
) -> None:
    path = tmp_path / "exports"
    path.write_text("before\n")
    os.chown(path, 0, grp.getgrnam(OTHER_GROUP).gr_gid)
    path.chmod(0o640)
    fileio.replace_text(str(path), "after\n")
    st = path.stat()
    assert path.read_text() == "after\n"
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (
        0o640, 0, grp.getgrnam(OTHER_GROUP).gr_gid)
    assert [p.name for p in tmp_path.iterdir()] == ["exports"]
    with pytest.raises(FileNotFoundError):
        fileio.replace_text(str(tmp_path / "absent"), "x")
