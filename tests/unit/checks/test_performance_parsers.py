"""The PERF checks' readers of limits, udev rules, modprobe options and MapR settings."""

from __future__ import annotations

import pytest

from m7guard.checks import performance as perf
from m7guard.checks.support.verdict import EvidenceError


def test_cat_listing_is_split_per_file() -> None:
    m = perf.FILE_MARK
    listing = f"{m} /etc/a.conf\nx = 1\n\n{m} /etc/b.conf\ny = 2\n\n{m} end\n"
    assert perf._files(listing) == [("/etc/a.conf", "x = 1\n"), ("/etc/b.conf", "y = 2\n")]
    assert perf._files(f"{m} end\n") == []


def test_a_listing_without_its_end_is_unreadable_not_empty() -> None:
    with pytest.raises(EvidenceError, match="ended early"):
        perf._files("")
    with pytest.raises(EvidenceError, match=r"1 file\(s\) begun"):
        perf._files(f"{perf.FILE_MARK} /etc/a.conf\nx = 1\n")


def test_a_file_cannot_pass_off_its_lines_as_another_file() -> None:
    """A line that looks like the old `==> path <==` head, or a marker of another audit,
    stays text of the file it is in."""
    m = perf.FILE_MARK
    forged = "==> /etc/b.conf <==\n@@m7g-0123456789abcdef /etc/c.conf"
    listing = f"{m} /etc/a.conf\n{forged}\n\n{m} end\n"
    assert perf._files(listing) == [("/etc/a.conf", forged + "\n")]


def test_limits_user_beats_group_beats_star_and_later_wins() -> None:
    files = [
        ("/etc/security/limits.conf", "*  soft nofile 1024\n* hard nofile 4096\n"),
        ("/etc/security/limits.d/10-a.conf", "@hadoop - nproc 70000\n"),
        ("/etc/security/limits.d/90-m.conf",
         "mapr soft nofile 65536\nmapr hard nofile 65536 # ok\nbob - nofile 1\n"),
        ("/etc/security/limits.d/99-z.conf", "* - nproc 10\n"),
    ]
    got = perf._limits(files, "mapr", ["mapr", "hadoop"])
    assert got["nofile_soft"]["value"] == 65536
    assert got["nofile_hard"]["in"] == "/etc/security/limits.d/90-m.conf:2"
    assert got["nproc_soft"]["value"] == 70000  # the group line beats the later `*` line
    assert perf._limits(files, "mapr", ["mapr"])["nproc_hard"]["value"] == 10
    assert perf._limits([("/x", "mapr soft nofile unlimited\n")], "mapr", [])[
        "nofile_soft"]["value"] == "unlimited"


def test_udev_assignments_of_nvme_rules_with_masking() -> None:
    rules = [
        ("/lib/udev/rules.d/60-m7guard-nvme.rules",
         'KERNEL=="nvme*", ATTR{queue/scheduler}="mq-deadline"\n'),
        ("/etc/udev/rules.d/60-m7guard-nvme.rules",
         'KERNEL!="nvme[0-9]*n[0-9]*", GOTO="end"\n# ATTR{queue/nomerges}="0"\n'
         'ATTR{queue/scheduler}="none"\nATTR{queue/nomerges}="1"\n'),
        ("/etc/udev/rules.d/70-other.rules", 'KERNEL=="sd*", ATTR{queue/nomerges}="2"\n'),
    ]
    got = perf._udev_assignments(rules)
    assert got == {"scheduler": ("none", "/etc/udev/rules.d/60-m7guard-nvme.rules:3"),
                   "nomerges": ("1", "/etc/udev/rules.d/60-m7guard-nvme.rules:4")}


def test_modprobe_option_last_effective_wins() -> None:
    files = [
        ("/lib/modprobe.d/10-nvme.conf", "options nvme_core io_timeout=30\n"),
        ("/etc/modprobe.d/m7guard-nvme.conf", "options nvme-core io_timeout=4294967295 # max\n"),
        ("/etc/modprobe.d/aaa.conf", "options nvme_core admin_timeout=60\n"),
    ]
    assert perf._modprobe_option(files, "nvme_core", "io_timeout") == (
        "4294967295", "/etc/modprobe.d/m7guard-nvme.conf:1")
    assert perf._modprobe_option(files[:1], "nvme_core", "io_timeout")[0] == "30"
    assert perf._modprobe_option([], "nvme_core", "io_timeout") is None


def test_boot_unit_or_tmpfiles_detection() -> None:
    thp = "/sys/kernel/mm/transparent_hugepage/enabled"
    unit = f"[Service]\nExecStart=/bin/sh -c 'echo never > {thp}'\n"
    assert perf._persisted_by_unit_or_tmpfiles(unit, thp, "never")
    assert perf._persisted_by_unit_or_tmpfiles(f"w {thp} - - - - never\n", thp, "never")
    assert not perf._persisted_by_unit_or_tmpfiles(unit.replace("never", "always"), thp, "never")
    assert not perf._persisted_by_unit_or_tmpfiles(f"# echo never > {thp}\n", thp, "never")


def test_mapr_settings_and_sizes() -> None:
    env = perf._exports('#!/bin/bash\nexport MAPR_MEMORY_OPTS="-Xmx2048m -Xms1g"\n'
                        "SPARK_EXECUTOR_MEMORY=3g\nexport SPARK_EXECUTOR_CORES='2'\n")
    assert env == {"MAPR_MEMORY_OPTS": "-Xmx2048m -Xms1g", "SPARK_EXECUTOR_MEMORY": "3g",
                   "SPARK_EXECUTOR_CORES": "2"}
    assert perf._mib("3g") == 3072
    assert perf._mib("512m") == 512
    assert perf._mib("1048576k") == 1024
    assert perf._mib("lots") is None
