"""Persisted sysctl configuration as systemd-sysctl applies it, and SysctlCheck's verdicts."""

from __future__ import annotations

import pytest

from m7guard.checks.support.sysctl import (
    ConfigFile,
    RunningValue,
    SysctlCheck,
    SysctlConfig,
    effective_files,
    is_namespaced,
    normalize_key,
    proc_path,
)


def cfg(*files: tuple[str, str] | tuple[str, str, str]) -> SysctlConfig:
    return SysctlConfig.parse(ConfigFile(*f) for f in files)


def test_last_file_in_lexical_order_of_basenames_wins_across_directories() -> None:
    config = cfg(
        ("/etc/sysctl.d/10-a.conf", "kernel.kptr_restrict = 1\n"),
        ("/usr/lib/sysctl.d/50-b.conf", "kernel.kptr_restrict = 0\n"),
        ("/run/sysctl.d/30-c.conf", "kernel.kptr_restrict = 2\n"),
    )
    eff = config.effective("kernel.kptr_restrict")
    assert eff is not None
    assert (eff.value, eff.where) == ("0", "/usr/lib/sysctl.d/50-b.conf:1")
    assert [a.where for a in config.history("kernel.kptr_restrict")] == [
        "/etc/sysctl.d/10-a.conf:1",
        "/run/sysctl.d/30-c.conf:1",
        "/usr/lib/sysctl.d/50-b.conf:1",
    ]


def test_etc_file_masks_same_named_file_in_usr_lib_and_run() -> None:
    files = [
        ConfigFile("/usr/lib/sysctl.d/50-default.conf", "fs.suid_dumpable = 2\n"),
        ConfigFile("/run/sysctl.d/50-default.conf", "fs.suid_dumpable = 1\n"),
        ConfigFile("/etc/sysctl.d/50-default.conf", "fs.suid_dumpable = 0\n"),
    ]
    assert [f.path for f in effective_files(files)] == ["/etc/sysctl.d/50-default.conf"]
    eff = SysctlConfig.parse(files).effective("fs.suid_dumpable")
    assert eff is not None and eff.value == "0"


def test_masking_with_an_empty_file_removes_the_lower_setting() -> None:
    config = cfg(
        ("/usr/lib/sysctl.d/50-x.conf", "net.ipv4.ip_forward = 1\n"),
        ("/etc/sysctl.d/50-x.conf", "", "/dev/null"),
    )
    assert config.effective("net.ipv4.ip_forward") is None


def test_within_a_file_the_last_line_wins_and_comments_are_ignored() -> None:
    config = cfg(
        (
            "/etc/sysctl.d/99-x.conf",
            "# kernel.dmesg_restrict = 0\n; kernel.dmesg_restrict = 0\n"
            "kernel.dmesg_restrict=0\n  kernel.dmesg_restrict   =   1  \n",
        ),
    )
    eff = config.effective("kernel.dmesg_restrict")
    assert eff is not None and (eff.value, eff.line) == ("1", 4)


def test_etc_sysctl_conf_is_read_last_unless_already_linked() -> None:
    d = ConfigFile("/etc/sysctl.d/99-zz.conf", "kernel.randomize_va_space = 1\n")
    conf = ConfigFile("/etc/sysctl.conf", "kernel.randomize_va_space = 2\n", "/etc/sysctl.conf")
    eff = SysctlConfig.parse([d, conf]).effective("kernel.randomize_va_space")
    assert eff is not None and eff.where == "/etc/sysctl.conf:1"
    linked = ConfigFile("/etc/sysctl.d/10-sysctl.conf", conf.content, "/etc/sysctl.conf")
    config = SysctlConfig.parse([linked, d, conf])
    assert [f.path for f in config.files] == [
        "/etc/sysctl.d/10-sysctl.conf",
        "/etc/sysctl.d/99-zz.conf",
    ]
    eff = config.effective("kernel.randomize_va_space")
    assert eff is not None and eff.value == "1"


def test_explicit_assignment_beats_a_later_glob_and_dash_excludes() -> None:
    config = cfg(
        (
            "/etc/sysctl.d/10-x.conf",
            "net.ipv4.conf.all.rp_filter = 1\n-net.ipv4.conf.lo.rp_filter\n",
        ),
        ("/etc/sysctl.d/90-glob.conf", "net.ipv4.conf.*.rp_filter = 2\n"),
    )
    eff = config.effective("net.ipv4.conf.all.rp_filter")
    assert eff is not None and eff.value == "1"
    eff = config.effective("net.ipv4.conf.default.rp_filter")
    assert eff is not None and (eff.value, eff.glob) == ("2", True)
    assert config.effective("net.ipv4.conf.lo.rp_filter") is None


def test_slash_separated_keys_and_ignore_failure_prefix() -> None:
    config = cfg(("/etc/sysctl.d/1.conf", "-net/ipv4/conf/eth0.100/rp_filter = 1\n"))
    eff = config.effective("net.ipv4.conf.eth0/100.rp_filter")
    assert eff is not None and eff.value == "1"
    assert normalize_key("kernel/yama/ptrace_scope") == "kernel.yama.ptrace_scope"
    assert proc_path("kernel.yama.ptrace_scope") == "/proc/sys/kernel/yama/ptrace_scope"


def test_files_outside_the_sysctl_directories_are_ignored() -> None:
    config = cfg(
        ("/etc/sysctl.d/x.conf.bak", "kernel.kptr_restrict = 0\n"),
        ("/tmp/sysctl.d/1.conf", "kernel.kptr_restrict = 0\n"),
    )
    assert config.effective("kernel.kptr_restrict") is None


@pytest.mark.parametrize(
    ("key", "namespaced"),
    [
        ("net.ipv4.ip_forward", True),
        ("net.ipv6.conf.all.accept_redirects", True),
        ("net.core.somaxconn", True),
        ("net.core.rmem_max", False),
        ("net.ipv4.tcp_mem", False),
        ("kernel.kptr_restrict", False),
        ("fs.suid_dumpable", False),
        ("vm.swappiness", False),
    ],
)
def test_namespaced_keys(key: str, namespaced: bool) -> None:
    assert is_namespaced(key) is namespaced


def _check(keys, running, config, container=None):
    evidence: dict = {}
    values = dict(running)
    check = SysctlCheck(
        keys,
        lambda k: RunningValue(k, values.get(k), "" if k in values else "No such file"),
        config,
        container,
        evidence,
    )
    return check, evidence


PERSISTED = cfg(
    ("/etc/sysctl.d/60-m7guard.conf", "kernel.kptr_restrict = 1\nnet.ipv4.ip_forward = 0\n")
)


def test_passes_when_running_and_persisted_are_allowed() -> None:
    check, evidence = _check(["kernel.kptr_restrict"], {"kernel.kptr_restrict": "1"}, PERSISTED)
    check.require([1, 2])
    (record,) = evidence["sysctl"]
    assert record["compliant"] is True
    assert record["persisted_in"] == "/etc/sysctl.d/60-m7guard.conf:1"
    assert record["read"] == "/proc/sys/kernel/kptr_restrict"
    assert evidence["config_files"] == ["/etc/sysctl.d/60-m7guard.conf"]


def test_fails_on_a_running_value_outside_the_allowed_set() -> None:
    check, evidence = _check(["kernel.kptr_restrict"], {"kernel.kptr_restrict": "0"}, PERSISTED)
    with pytest.raises(
        AssertionError, match=r"kernel.kptr_restrict is 0 at run time; wanted: 1 or 2"
    ):
        check.require([1, 2])
    assert evidence["sysctl"][0]["compliant"] is False


def test_fails_when_the_value_is_not_persisted() -> None:
    check, _ = _check(["kernel.dmesg_restrict"], {"kernel.dmesg_restrict": "1"}, PERSISTED)
    with pytest.raises(AssertionError, match="not set in any sysctl configuration file"):
        check.require([1])


def test_fails_when_the_persisted_value_is_wrong() -> None:
    config = cfg(("/etc/sysctl.d/99-bad.conf", "net.ipv4.ip_forward = 1\n"))
    check, _ = _check(["net.ipv4.ip_forward"], {"net.ipv4.ip_forward": "0"}, config)
    with pytest.raises(AssertionError, match=r"= 1 in /etc/sysctl.d/99-bad.conf:1; wanted: 0"):
        check.require([0])


def test_fails_when_the_key_does_not_exist() -> None:
    check, _ = _check(["kernel.yama.ptrace_scope"], {}, PERSISTED)
    with pytest.raises(AssertionError, match=r"cannot be read \(No such file\)"):
        check.require([1])


def test_every_key_of_a_multi_key_rule_must_hold() -> None:
    config = cfg(("/etc/sysctl.d/1.conf", "fs.protected_hardlinks=1\nfs.protected_symlinks=1\n"))
    running = {"fs.protected_hardlinks": "1", "fs.protected_symlinks": "0"}
    check, evidence = _check(["fs.protected_hardlinks", "fs.protected_symlinks"], running, config)
    with pytest.raises(AssertionError, match=r"fs\.protected_symlinks is 0") as err:
        check.require([1])
    assert "fs.protected_hardlinks" not in str(err.value)
    assert [r["compliant"] for r in evidence["sysctl"]] == [True, False]


def test_global_key_on_a_container_is_notapplicable_but_namespaced_key_is_checked() -> None:
    check, _ = _check(["kernel.kptr_restrict"], {"kernel.kptr_restrict": "0"}, PERSISTED, "podman")
    with pytest.raises(pytest.skip.Exception, match=r"notapplicable: kernel\.kptr_restrict belong"):
        check.require([1])
    check, _ = _check(["net.ipv4.ip_forward"], {"net.ipv4.ip_forward": "1"}, PERSISTED, "podman")
    with pytest.raises(AssertionError, match=r"net\.ipv4\.ip_forward is 1 at run time"):
        check.require([0])


def test_a_check_must_name_its_keys() -> None:
    with pytest.raises(ValueError, match="names no sysctl key"):
        _check([], {}, PERSISTED)


def test_on_a_container_the_namespaced_keys_of_a_mixed_rule_are_still_judged() -> None:
    """The host kernel's keys are left out and recorded; the container's own are judged."""
    running = {"net.ipv4.tcp_rmem": "4096 131072 1048576", "net.core.rmem_max": "212992"}
    config = cfg(("/etc/sysctl.d/60-m7guard.conf", "net.ipv4.tcp_rmem = 4096 131072 1048576\n"))
    check, evidence = _check(list(running), running, config, "podman")
    wanted = {"net.ipv4.tcp_rmem": (lambda v: int(v.split()[2]) >= 2**21, "max >= 2 MiB"),
              "net.core.rmem_max": (lambda v: int(v) >= 2**21, ">= 2 MiB")}
    with pytest.raises(AssertionError, match=r"net\.ipv4\.tcp_rmem is 4096 131072 1048576") as err:
        check.require_each(wanted)
    assert "net.core.rmem_max" not in str(err.value)
    assert evidence["host_kernel_keys"] == ["net.core.rmem_max"]
    assert [r["key"] for r in evidence["sysctl"]] == ["net.ipv4.tcp_rmem"]


def test_a_value_is_judged_by_its_predicate_and_described_by_its_text() -> None:
    check, evidence = _check(["kernel.kptr_restrict"], {"kernel.kptr_restrict": "2"}, PERSISTED)
    with pytest.raises(AssertionError, match=r"= 1 in .*60-m7guard.conf:1; wanted: at least 2"):
        check.require_each({"kernel.kptr_restrict": (lambda v: int(v) >= 2, "at least 2")})
    (record,) = evidence["sysctl"]
    assert record["wanted"] == "at least 2" and record["compliant"] is False
