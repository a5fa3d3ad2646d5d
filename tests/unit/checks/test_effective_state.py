"""Class 2 of issue 13: a check reads the effective state as well as the configuration text,
and a commented line sets nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from m7guard.catalog import load_catalog
from m7guard.checks import audit_logging, kerberos_mfa, performance
from m7guard.checks.support import files
from m7guard.checks.support.snapshot import HostFacts, HostSnapshot
from m7guard.checks.support.sshd import Context

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "policies")


def params(rule_id: str) -> dict[str, Any]:
    return CATALOG.parameters_for(CATALOG.rule(rule_id), CATALOG.profile("baseline"))


def snapshot(container: str | None = None) -> HostSnapshot:
    return HostSnapshot("node", None, facts=HostFacts(container=container, systemd=True))


# -- IDN-009: TMOUT ---------------------------------------------------------------------------

ROLE_TMOUT = """\
# Idle interactive shells end after 900 seconds (m7guard IDN-009, PCI DSS 8.2.8).
if [ "${TMOUT:-}" != "900" ]; then
    TMOUT=900
    readonly TMOUT
    export TMOUT
fi
"""


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(kerberos_mfa, "new_marker", lambda: "@@M")
    monkeypatch.setattr(files, "new_marker", lambda: "@@M")
    return "@@M"


def _sshd_view() -> kerberos_mfa.SshdView:
    return kerberos_mfa.SshdView(
        global_=Context(None, None, {"channeltimeout": ["session:shell=900"]}))


def _tmout_host(fake_host, profile: str, login_shell: str):
    listing = f"@@M /etc/profile.d/m7guard-tmout.sh\n{profile}\n@@M end\n"
    return fake_host({"declare -p TMOUT": login_shell, "/etc/profile.d": listing})


def test_idn_009_a_commented_tmout_sets_nothing(expect, fake_host, marker) -> None:
    host = _tmout_host(fake_host, "# TMOUT=600\n# readonly TMOUT\n", "unset\n")
    message = expect.fail(kerberos_mfa.test_idn_009, host=host, sshd=_sshd_view(),
                          params=params("IDN-009"), evidence={})
    assert "TMOUT" in message


def test_idn_009_fails_when_a_login_shell_does_not_get_the_timeout(expect, fake_host,
                                                                     marker) -> None:
    host = _tmout_host(fake_host, ROLE_TMOUT, "unset\n")
    evidence: dict[str, Any] = {}
    message = expect.fail(kerberos_mfa.test_idn_009, host=host, sshd=_sshd_view(),
                          params=params("IDN-009"), evidence=evidence)
    assert "login shell" in message
    writable = _tmout_host(fake_host, ROLE_TMOUT, 'declare -x TMOUT="900"\n')
    assert "read-only" in expect.fail(kerberos_mfa.test_idn_009, host=writable, sshd=_sshd_view(),
                                      params=params("IDN-009"), evidence={})


def test_idn_009_passes_on_the_role_file_with_a_read_only_login_shell(expect, fake_host,
                                                                      marker) -> None:
    host = _tmout_host(fake_host, ROLE_TMOUT, 'declare -rx TMOUT="900"\n')
    evidence: dict[str, Any] = {}
    expect.run(kerberos_mfa.test_idn_009, host=host, sshd=_sshd_view(), params=params("IDN-009"),
               evidence=evidence)
    assert evidence["tmout"] == {"/etc/profile.d/m7guard-tmout.sh": [900]}
    assert evidence["login_shell"] == 'declare -rx TMOUT="900"'


def _no_channel_timeout_host(fake_host, ssh_version: str, login_shell: str):
    listing = f"@@M /etc/profile.d/m7guard-tmout.sh\n{ROLE_TMOUT}\n@@M end\n"
    return fake_host({"declare -p TMOUT": login_shell, "/etc/profile.d": listing,
                      "ssh -V": ssh_version})


@pytest.mark.parametrize("version", ["OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.20",
                                     "OpenSSH_10.0p2 Debian-7+deb13u4", "command not found"])
def test_idn_009_without_channeltimeout_fails_where_sshd_knows_it(
    expect, fake_host, marker, version: str
) -> None:
    """OpenSSH 9.2's sshd -T leaves ChannelTimeout out while unset: that is `none`, as is a
    version that cannot be read."""
    host = _no_channel_timeout_host(fake_host, version, 'declare -rx TMOUT="900"\n')
    message = expect.fail(kerberos_mfa.test_idn_009, host=host,
                          sshd=kerberos_mfa.SshdView(global_=Context(None, None, {})),
                          params=params("IDN-009"), evidence={})
    assert "idle shells stay open (none)" in message


def test_idn_009_before_openssh_9_2_judges_the_read_only_tmout_alone(
    expect, fake_host, marker
) -> None:
    view = kerberos_mfa.SshdView(global_=Context(None, None, {}))
    old = "OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023"
    evidence: dict[str, Any] = {}
    expect.run(kerberos_mfa.test_idn_009,
               host=_no_channel_timeout_host(fake_host, old, 'declare -rx TMOUT="900"\n'),
               sshd=view, params=params("IDN-009"), evidence=evidence)
    assert evidence["openssh"] == "8.4"
    assert evidence["channeltimeout"] == "unknown to this sshd (OpenSSH before 9.2)"
    assert "login shell" in expect.fail(
        kerberos_mfa.test_idn_009,
        host=_no_channel_timeout_host(fake_host, old, "unset\n"),
        sshd=view, params=params("IDN-009"), evidence={})


# -- PERF-007 and PERF-011: the kernel command line -----------------------------------------


LISTINGS = ("files", "rules", "modprobe")  # the sections that list files


def _listing(text: str) -> str:
    """A file listing written as `==> path <==` heads, in the checks' own format."""
    marked = re.sub(r"^==> (.+?) <==$", lambda m: f"{performance.FILE_MARK} {m.group(1)}", text,
                    flags=re.MULTILINE)
    return f"{marked}\n{performance.FILE_MARK} end"


def _sections(**parts: str) -> str:
    return "".join(f"{performance.MARK} {name}\n{_listing(text) if name in LISTINGS else text}\n"
                   for name, text in parts.items())


def _perf_host(fake_host, **parts: str):
    return fake_host({"@@m7g-perf": _sections(**parts)})


THP_NEVER = "always madvise [never]"
COMMENTED_GRUB = '# GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX transparent_hugepage=never"'
ROLE_GRUB = ('# Managed by m7guard\n'
             'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX transparent_hugepage=never"')


def test_perf_007_a_commented_grub_line_sets_nothing(expect, fake_host) -> None:
    host = _perf_host(fake_host, enabled=THP_NEVER, cmdline="BOOT_IMAGE=/vmlinuz ro quiet",
                      grub=COMMENTED_GRUB, units="", tmpfiles="", grubcfg="")
    message = expect.fail(performance.test_perf_007, host=host, evidence={},
                          params=params("PERF-007"))
    assert "at boot" in message


def test_perf_007_a_grub_default_never_generated_into_grub_cfg_is_not_persisted(
        expect, fake_host) -> None:
    host = _perf_host(fake_host, enabled=THP_NEVER, cmdline="BOOT_IMAGE=/vmlinuz ro quiet",
                      grub=ROLE_GRUB, units="", tmpfiles="",
                      grubcfg="\tlinux\t/boot/vmlinuz root=/dev/vda1 ro quiet")
    message = expect.fail(performance.test_perf_007, host=host, evidence={},
                          params=params("PERF-007"))
    assert "grub.cfg" in message


def test_perf_007_a_kernel_booted_with_another_value_fails(expect, fake_host) -> None:
    host = _perf_host(fake_host, enabled=THP_NEVER,
                      cmdline="BOOT_IMAGE=/vmlinuz transparent_hugepage=always",
                      grub="", units="", tmpfiles="w /sys/kernel/mm/transparent_hugepage/enabled"
                      " - - - - never", grubcfg="")
    assert "command line" in expect.fail(performance.test_perf_007, host=host, evidence={},
                                         params=params("PERF-007"))


def test_perf_007_passes_with_grub_applied_or_a_boot_unit(expect, fake_host) -> None:
    applied = _perf_host(fake_host, enabled=THP_NEVER,
                         cmdline="BOOT_IMAGE=/vmlinuz ro transparent_hugepage=never",
                         grub=ROLE_GRUB, units="", tmpfiles="",
                         grubcfg="\tlinux\t/boot/vmlinuz ro transparent_hugepage=never")
    evidence: dict[str, Any] = {}
    expect.run(performance.test_perf_007, host=applied, evidence=evidence,
               params=params("PERF-007"))
    assert evidence["kernel_command_line"] is True
    unit = _perf_host(fake_host, enabled=THP_NEVER, cmdline="BOOT_IMAGE=/vmlinuz ro", grub="",
                      units="ExecStart=/bin/sh -c 'echo never > "
                      "/sys/kernel/mm/transparent_hugepage/enabled'", tmpfiles="", grubcfg="")
    expect.run(performance.test_perf_007, host=unit, evidence={}, params=params("PERF-007"))


def test_perf_011_a_commented_grub_line_sets_nothing(expect, fake_host) -> None:
    host = _perf_host(fake_host, running="4294967295", modprobe="",
                      grub='#GRUB_CMDLINE_LINUX="nvme_core.io_timeout=4294967295"')
    message = expect.fail(performance.test_perf_011, host=host, evidence={},
                          params=params("PERF-011"))
    assert "neither in modprobe.d nor" in message


# -- PERF-008: limits of a systemd-started service ------------------------------------------

LIMITS = ("==> /etc/security/limits.d/90-m7guard-mapr.conf <==\n"
          "mapr soft nofile 65536\nmapr hard nofile 65536\n"
          "mapr soft nproc 64000\nmapr hard nproc 64000\n")


def _unit(load: str = "loaded", nofile: str = "65536", nofile_soft: str = "65536",
          nproc: str = "64000", nproc_soft: str = "64000") -> str:
    return (f"LoadState={load}\nLimitNOFILE={nofile}\nLimitNOFILESoft={nofile_soft}\n"
            f"LimitNPROC={nproc}\nLimitNPROCSoft={nproc_soft}")


def _limits_host(fake_host, warden: str):
    return _perf_host(fake_host, files=LIMITS, groups="mapr", proc="",
                      **{"unit mapr-warden.service": warden,
                         "unit mapr-zookeeper.service": _unit("not-found", "0", "0", "0", "0")})


def test_perf_008_limits_conf_does_not_reach_a_systemd_service(expect, fake_host) -> None:
    host = _limits_host(fake_host, _unit(nofile="524288", nofile_soft="1024"))
    evidence: dict[str, Any] = {}
    message = expect.fail(performance.test_perf_008, host=host, evidence=evidence,
                          params=params("PERF-008"), host_snapshot=snapshot())
    assert "mapr-warden.service" in message and "1024" in message


def test_perf_008_passes_with_unit_limits_and_ignores_units_not_installed(
        expect, fake_host) -> None:
    host = _limits_host(fake_host, _unit(nofile="infinity", nofile_soft="infinity"))
    evidence: dict[str, Any] = {}
    expect.run(performance.test_perf_008, host=host, evidence=evidence,
               params=params("PERF-008"), host_snapshot=snapshot())
    assert evidence["units"]["mapr-zookeeper.service"] == "not installed"
    assert evidence["units"]["mapr-warden.service"]["LimitNOFILESoft"] == "infinity"


# -- AUD-002: auditd.conf and the running daemon ---------------------------------------------

AUDITD_CONF = """\
write_logs = yes
max_log_file = 32
num_logs = 5
max_log_file_action = KEEP_LOGS
space_left = 200
space_left_action = SYSLOG
admin_space_left = 100
admin_space_left_action = SINGLE
disk_full_action = SINGLE
disk_error_action = SINGLE
"""
STATUS = "enabled 1\nfailure 1\npid {pid}\nrate_limit 0\nbacklog_limit 8192\nlost 0\n"


@pytest.fixture
def auditd_host(fake_host, fake_file):
    def make(status: str, started: int = 2000, mtime: int = 1000):
        return _auditd_host(fake_host, fake_file, status, started, mtime)

    return make


def _auditd_host(fake_host, fake_file, status: str, started: int, mtime: int):
    # /proc/PID/stat field 22 is the start time in clock ticks after boot (btime 1000).
    stat = "412 (auditd) S " + " ".join(["0"] * 18) + f" {(started - 1000) * 100} 0"
    return fake_host(
        {"auditctl -s": status,
         "/proc/stat": f"{stat}\n100\nbtime 1000\n{mtime}\n"},
        files={"/etc/audit/auditd.conf": fake_file(AUDITD_CONF, 0o640)})


def test_aud_002_a_good_auditd_conf_with_kernel_auditing_off_fails(expect, auditd_host) -> None:
    host = auditd_host("enabled 0\nfailure 1\npid 0\n")
    message = expect.fail(audit_logging.test_aud_002, host=host, params=params("AUD-002"),
                          evidence={}, host_snapshot=snapshot())
    assert "auditctl -s" in message


def test_aud_002_a_conf_changed_after_auditd_started_is_not_in_effect(expect,
                                                                       auditd_host) -> None:
    host = auditd_host(STATUS.format(pid=412), started=1500, mtime=1800)
    message = expect.fail(audit_logging.test_aud_002, host=host, params=params("AUD-002"),
                          evidence={}, host_snapshot=snapshot())
    assert "after auditd" in message


def test_aud_002_passes_on_a_running_auditd_and_on_a_container(expect, auditd_host) -> None:
    evidence: dict[str, Any] = {}
    expect.run(audit_logging.test_aud_002,
               host=auditd_host(STATUS.format(pid=412)),
               params=params("AUD-002"), evidence=evidence, host_snapshot=snapshot())
    assert evidence["auditctl_status"]["pid"] == "412"
    evidence = {}
    expect.run(audit_logging.test_aud_002,
               host=auditd_host("", started=0),
               params=params("AUD-002"), evidence=evidence, host_snapshot=snapshot("podman"))
    assert "host kernel" in evidence["auditctl_status"]
