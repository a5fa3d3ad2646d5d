"""The OSB checks on answers a node could give: unreadable evidence is `error`, never `pass`;
the password quality policy is resolved as pam_pwquality resolves it (pwquality.conf, its
conf.d files in name order, then the module's own arguments). The lab proves each check
failing on a broken hardened node and passing on a hardened one (tests/battery/osb.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from m7guard.catalog import load_catalog
from m7guard.checks import os_baseline

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "policies")
LOGIN_DEFS = ("PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\nENCRYPT_METHOD YESCRYPT\n"
              "YESCRYPT_COST_FACTOR 8\nUMASK 027\nUID_MIN 1000\n")
COMMON_PASSWORD = ("password requisite pam_pwquality.so retry=3\n"
                   "password [success=1 default=ignore] pam_unix.so obscure use_authtok yescrypt\n")
POLICY = ("minlen = 14\nminclass = 4\ndifok = 2\nmaxrepeat = 3\nmaxsequence = 3\n"
          "dictcheck = 1\nenforcing = 1\nenforce_for_root\n")


def params(rule_id: str) -> dict[str, Any]:
    return CATALOG.parameters_for(CATALOG.rule(rule_id), CATALOG.profile("baseline"))


def files(contents: dict[str, str]) -> Any:
    """An answer to support/files.py's listing: the files asked for (by name or by a pattern
    of their directory) that exist, between its markers."""

    def answer(command: str) -> str:
        marker = re.search(r'(@@m7g-[0-9a-f]+) end', command).group(1)
        body = "".join(f"{marker} {path}\n{text}\n" for path, text in contents.items()
                       if path in command or f"{Path(path).parent}/*" in command)
        return f"{body}{marker} end\n"

    return answer


def test_osb_001_without_login_defs_is_an_error(expect, fake_host) -> None:
    host = fake_host({"@@m7g-": files({})})
    assert "login.defs" in expect.error(os_baseline.test_osb_001, host=host,
                                        params=params("OSB-001"), evidence={})


def test_osb_001_when_shadow_cannot_be_read_is_an_error(expect, fake_host, out) -> None:
    host = fake_host({"@@m7g-": files({"/etc/login.defs": LOGIN_DEFS}),
                      "awk -F:": out(2, "", "awk: cannot open /etc/shadow")})
    assert "/etc/shadow" in expect.error(os_baseline.test_osb_001, host=host,
                                         params=params("OSB-001"), evidence={})


def test_osb_001_passes_and_fails_on_readable_evidence(expect, fake_host) -> None:
    shadow = "root:locked:0:99999:7:\ndaemon:locked:0:99999:7:\n"
    good = fake_host({"@@m7g-": files({"/etc/login.defs": LOGIN_DEFS}), "awk -F:": shadow})
    evidence: dict[str, Any] = {}
    expect.run(os_baseline.test_osb_001, host=good, params=params("OSB-001"), evidence=evidence)
    assert evidence["accounts_with_password"] == []
    aged = fake_host({"@@m7g-": files({"/etc/login.defs": LOGIN_DEFS}),
                      "awk -F:": shadow + "alice:usable:0:99999:7:30\n"})
    assert "account alice" in expect.fail(os_baseline.test_osb_001, host=aged,
                                          params=params("OSB-001"), evidence={})


def test_the_shadow_read_never_prints_a_hash() -> None:
    # the awk program prints $1 and $4..$7, and only whether $2 is a usable hash
    printed = re.search(r"print ([^}]*)}", os_baseline.SHADOW_AGING).group(1)
    assert "$2" not in printed and "$1" in printed


def _pwquality_host(fake_host, conf_d: str, args: str = "") -> Any:
    stack = COMMON_PASSWORD.replace("retry=3", f"retry=3 {args}".strip())
    return fake_host({
        "@@m7g-": files({"/etc/pam.d/common-password": stack,
                         "/etc/security/pwquality.conf": "minlen = 20\n",
                         "/etc/security/pwquality.conf.d/50-site.conf": conf_d}),
        "dpkg-query": "installed",
    })


def test_osb_002_a_conf_d_file_overrides_pwquality_conf(expect, fake_host) -> None:
    host = _pwquality_host(fake_host, POLICY.replace("minlen = 14", "minlen = 8"))
    assert "minlen is 8" in expect.fail(os_baseline.test_osb_002, host=host,
                                        params=params("OSB-002"), evidence={})


def test_osb_002_the_module_arguments_override_the_files(expect, fake_host) -> None:
    weak = _pwquality_host(fake_host, POLICY, args="minlen=6")
    assert "minlen is 6" in expect.fail(os_baseline.test_osb_002, host=weak,
                                        params=params("OSB-002"), evidence={})
    strong = _pwquality_host(fake_host, POLICY.replace("minlen = 14", "minlen = 8"),
                             args="minlen=16")
    expect.run(os_baseline.test_osb_002, host=strong, params=params("OSB-002"), evidence={})


def test_osb_002_without_the_pam_stack_is_an_error(expect, fake_host) -> None:
    host = fake_host({"@@m7g-": files({})})
    assert "common-password" in expect.error(os_baseline.test_osb_002, host=host,
                                             params=params("OSB-002"), evidence={})


def test_osb_003_when_useradd_prints_no_defaults_is_an_error(expect, fake_host, out) -> None:
    host = fake_host({"useradd -D": out(1, "", "useradd: cannot open /etc/default/useradd")})
    assert "INACTIVE" in expect.error(os_baseline.test_osb_003, host=host,
                                      params=params("OSB-003"), evidence={})


def _verify_host(fake_host, out, listing: str, finished: bool = True) -> Any:
    def verify(command: str) -> Any:
        marker = re.search(r"(@@m7g-[0-9a-f]+)", command).group(1)
        return out(0, listing + (f"{marker} 0\n" if finished else ""))

    return fake_host({"systemctl show m7guard-package-verify.timer":
                      "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n",
                      "--property=ExecStart": "ExecStart={ path=/bin/sh ; argv[]=/bin/sh -c "
                                              "out=$(/usr/bin/dpkg --verify) }\n",
                      "dpkg --verify;": verify})


def test_osb_011_judges_only_files_that_are_not_configuration(expect, fake_host, out) -> None:
    conffile = "??5?????? c /etc/login.defs\n"
    expect.run(os_baseline.test_osb_011, host=_verify_host(fake_host, out, conffile),
               evidence={})
    changed = conffile + "??5??????   /usr/bin/passwd\nmissing     /usr/bin/chage\n"
    message = expect.fail(os_baseline.test_osb_011, host=_verify_host(fake_host, out, changed),
                          evidence={})
    assert "/usr/bin/passwd" in message and "/usr/bin/chage" in message


def test_osb_011_a_verification_that_did_not_finish_is_an_error(expect, fake_host,
                                                                out) -> None:
    host = _verify_host(fake_host, out, "??5?????? c /etc/login.defs\n", finished=False)
    assert "did not complete" in expect.error(os_baseline.test_osb_011, host=host, evidence={})
    odd = _verify_host(fake_host, out, "dpkg: warning: files list file for package x missing\n")
    assert "printed" in expect.error(os_baseline.test_osb_011, host=odd, evidence={})


def test_osb_012_when_apt_cache_fails_is_an_error(expect, fake_host, out) -> None:
    host = fake_host({"@@m7g-": files({"/etc/os-release": "VERSION_CODENAME=bookworm\n"}),
                      "apt-cache policy": out(100, "", "E: Could not open lock file")})
    assert "apt-cache" in expect.error(os_baseline.test_osb_012, host=host, evidence={})


def _modprobe_host(fake_host, resolved: dict[str, list[str]], loaded: list[str],
                   blacklist: list[str]) -> Any:
    def answer(command: str) -> str:
        marker = re.search(r"(@@m7g-[0-9a-f]+)", command).group(1)
        out = "".join(f"{marker} {name}\n" + "".join(f"{line} \n" for line in lines)
                      for name, lines in resolved.items())
        out += f"{marker} blacklist\n" + "".join(f"blacklist {b}\n" for b in blacklist)
        out += f"{marker} loaded\n" + "".join(f"{m}\n" for m in loaded)
        return out + f"{marker} end\n"

    return fake_host({"modprobe -n -v": answer})


def test_osb_004_dependencies_modprobe_lists_first_do_not_count(expect, fake_host) -> None:
    """modprobe -n -v lists a module's dependencies before the module itself (Debian 12's
    6.1 kernel: sctp needs crc32c and the UDP tunnels); the module's own line decides."""
    blocked = {"blocked": ["sctp", "usb-storage"]}
    deps = {"sctp": ["insmod /lib/modules/6.1.0-50-amd64/kernel/lib/libcrc32c.ko",
                     "install /bin/false"],
            "usb-storage": ["insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/core/"
                            "usbcore.ko", "install /bin/false"]}
    expect.run(os_baseline.test_osb_004,
               host=_modprobe_host(fake_host, deps, ["ext4"], ["sctp", "usb_storage"]),
               params=blocked, evidence={})
    loadable = dict(deps, **{"usb-storage": [
        "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/core/usbcore.ko",
        "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/storage/usb-storage.ko"]})
    message = expect.fail(os_baseline.test_osb_004,
                          host=_modprobe_host(fake_host, loadable, ["ext4"],
                                              ["sctp", "usb_storage"]),
                          params=blocked, evidence={})
    assert "usb-storage can be loaded" in message and "sctp" not in message
    loaded = expect.fail(os_baseline.test_osb_004,
                         host=_modprobe_host(fake_host, deps, ["sctp", "ext4"], ["sctp"]),
                         params=blocked, evidence={})
    assert "sctp is loaded" in loaded and "usb-storage is not blacklisted" in loaded


def test_osb_004_without_the_module_listing_is_an_error(expect, fake_host, out) -> None:
    host = fake_host({"modprobe -n -v": out(0, "")})
    assert "modprobe" in expect.error(os_baseline.test_osb_004, host=host,
                                      params={"blocked": ["sctp"]}, evidence={})


# --- OSB-014: pending security updates ------------------------------------------------------

RECORDER = ROOT / "roles/os_baseline/files/m7guard-security-pending"
NOW = 1_800_000_000
DAY = 86400
# apt-get -s dist-upgrade on Debian 12 with the security suite, and with the battery's
# stand-in suite (no version in its Release: `Label:Suite`)
SIMULATION = (
    "NOTE: This is only a simulation!\n"
    "Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/oldstable-security "
    "[amd64])\n"
    "Inst libpam-modules-bin [1.5.2-6+deb12u2] (1.5.2-6+deb12u3 "
    "Debian-Security:12/oldstable-security [amd64]) [libpam-modules:amd64 on "
    "libpam-modules-bin:amd64] [libpam-modules:amd64 ]\n"
    "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/oldstable [all])\n"
    "Inst acct [6.6.4-5+b1] (6.6.4-5+b1+m7guardbattery1 m7guard-battery:battery-security "
    "[amd64])\n"
    "Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian:12.11/oldstable, "
    "Debian-Security:12/oldstable-security [amd64])\n"
    "Conf libssl3 (3.0.17-1~deb12u2 Debian-Security:12/oldstable-security [amd64])\n")
PENDING = {"libssl3": "3.0.17-1~deb12u2", "libpam-modules-bin": "1.5.2-6+deb12u3",
           "acct": "6.6.4-5+b1+m7guardbattery1", "linux-image-6.1.0-40-amd64": "6.1.153-1"}
HOOK = ('APT::Update::Post-Invoke-Success:: "if [ -x /usr/local/sbin/m7guard-security-pending ]'
        '; then /usr/local/sbin/m7guard-security-pending || true; fi";\n')


def test_the_check_and_the_recorder_read_the_simulation_alike() -> None:
    """Two readers of one format (the recorder runs on nodes without m7guard): they agree."""
    import runpy

    recorder = runpy.run_path(str(RECORDER))
    assert os_baseline.security_pending(SIMULATION) == PENDING
    assert recorder["pending"](SIMULATION) == PENDING
    # run as root, a simulation writes apt's planner log, readable by everyone (AUD-006):
    # neither the check nor the recorder may leave one
    assert "Dir::Log::Planner=/dev/null" in os_baseline.SIMULATE_UPGRADE
    assert "Dir::Log::Planner=/dev/null" in recorder["SIMULATE"]


def _run_recorder(tmp_path: Path, simulation: str, rc: int = 0) -> Any:
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "simulation").write_text(simulation)
    fake = bin_dir / "apt-get"
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'simulation'}\nexit {rc}\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return subprocess.run([sys.executable, str(RECORDER), str(tmp_path / "lib/security-pending")],
                          env=env, capture_output=True, text=True, check=False)


def _record(tmp_path: Path) -> dict[str, tuple[str, int]]:
    text = (tmp_path / "lib/security-pending").read_text()
    return os_baseline.pending_record(text)[1]


def test_the_recorder_keeps_first_seen_while_pending_and_drops_what_was_installed(
        tmp_path: Path) -> None:
    assert _run_recorder(tmp_path, SIMULATION).returncode == 0
    first = _record(tmp_path)
    assert {p: v for p, (v, _) in first.items()} == PENDING
    record = tmp_path / "lib/security-pending"
    # libssl3's clock started 40 days ago; a newer libssl3 replaces the pending one; acct is
    # installed
    record.write_text(record.read_text().replace(
        f"libssl3 3.0.17-1~deb12u2 {first['libssl3'][1]}", "libssl3 3.0.17-1~deb12u2 1000"))
    newer = SIMULATION.replace("3.0.17-1~deb12u2", "3.0.18-1~deb12u1")
    newer = "\n".join(line for line in newer.splitlines() if not line.startswith("Inst acct"))
    assert _run_recorder(tmp_path, newer).returncode == 0
    second = _record(tmp_path)
    assert second["libssl3"] == ("3.0.18-1~deb12u1", 1000)
    assert "acct" not in second
    assert oct(record.stat().st_mode & 0o777) == "0o644"


def test_the_recorder_leaves_a_damaged_record_and_a_failed_simulation_alone(
        tmp_path: Path) -> None:
    record = tmp_path / "lib/security-pending"
    record.parent.mkdir()
    record.write_text("libssl3 3.0.17 1000\nnot a record line\n")
    proc = _run_recorder(tmp_path, SIMULATION)
    assert proc.returncode == 1 and "line 2" in proc.stderr
    assert record.read_text() == "libssl3 3.0.17 1000\nnot a record line\n"
    record.write_text("libssl3 3.0.17 1000\n")
    proc = _run_recorder(tmp_path, "E: broken\n", rc=100)
    assert proc.returncode == 1 and "failed (exit 100)" in proc.stderr
    assert record.read_text() == "libssl3 3.0.17 1000\n"


def _pending_host(fake_host, out, *, hook: bool = True, record: str | None,
                  lists: int = NOW - DAY, simulation: str = SIMULATION,
                  simulated: bool = True) -> Any:
    def probe(command: str) -> Any:
        marker = re.search(r"(@@m7g-[0-9a-f]+)", command).group(1)
        if not simulated:
            return out(0, f"{NOW}\n{marker}\n{lists} /var/lib/apt/lists/x_Packages\n{marker}\n"
                          f"{marker} 100\n", "E: Could not open lock file")
        return (f"{NOW}\n{marker}\n{lists} /var/lib/apt/lists/x_Packages\n{marker}\n"
                f"{simulation}{marker} 0\n")

    found = {} if record is None else {os_baseline.PENDING_RECORD: record}
    return fake_host({"apt-config dump": 'APT::Update::Post-Invoke-Success "";\n'
                      + (HOOK if hook else ""),
                      "apt-get -s": probe, "@@m7g-": files(found)})


def _a_record(first_seen: dict[str, int], updated: int = NOW - 3600) -> str:
    return (f"# header\n# updated {updated}\n"
            + "".join(f"{p} {v} {first_seen.get(p, NOW - DAY)}\n" for p, v in PENDING.items()))


def test_osb_014_passes_within_the_limit_and_fails_past_it(expect, fake_host, out) -> None:
    within = _pending_host(fake_host, out, record=_a_record({"libssl3": NOW - 30 * DAY}))
    evidence: dict[str, Any] = {}
    expect.run(os_baseline.test_osb_014, host=within, params=params("OSB-014"),
               evidence=evidence)
    assert evidence["pending_security"]["libssl3"] == "3.0.17-1~deb12u2, 30 days"
    late = _pending_host(fake_host, out, record=_a_record({"libssl3": NOW - 31 * DAY}))
    assert "libssl3 3.0.17-1~deb12u2 (31 days)" in expect.fail(
        os_baseline.test_osb_014, host=late, params=params("OSB-014"), evidence={})
    stale = _pending_host(fake_host, out, record=_a_record({}, updated=NOW - 8 * DAY),
                          lists=NOW - 9 * DAY)
    assert "last updated 8 days ago" in expect.fail(
        os_baseline.test_osb_014, host=stale, params=params("OSB-014"), evidence={})


def test_osb_014_without_the_hook_fails(expect, fake_host, out) -> None:
    for record in (None, _a_record({})):
        host = _pending_host(fake_host, out, hook=False, record=record)
        assert "Post-Invoke-Success" in expect.fail(
            os_baseline.test_osb_014, host=host, params=params("OSB-014"), evidence={})


def test_osb_014_a_record_that_cannot_say_since_when_is_an_error(expect, fake_host,
                                                                 out) -> None:
    cases = {
        "does not exist": _pending_host(fake_host, out, record=None),
        "changed after the record": _pending_host(fake_host, out, record=_a_record({}),
                                                  lists=NOW - 60),
        "the record has no entry": _pending_host(
            fake_host, out, record=_a_record({}).replace("acct ", "# acct ")),
        "the record has 3.0.16": _pending_host(
            fake_host, out, record=_a_record({}).replace("libssl3 3.0.17-1~deb12u2",
                                                         "libssl3 3.0.16")),
        "in the future": _pending_host(fake_host, out,
                                       record=_a_record({"acct": NOW + 2 * DAY})),
        "not 'package version seconds'": _pending_host(
            fake_host, out, record=_a_record({}) + "garbage\n"),
        "has no '# updated' line": _pending_host(
            fake_host, out, record=_a_record({}).replace("# updated", "# was")),
        "did not complete": _pending_host(fake_host, out, record=_a_record({}),
                                          simulated=False),
    }
    for words, host in cases.items():
        assert words in expect.error(os_baseline.test_osb_014, host=host,
                                     params=params("OSB-014"), evidence={}), words


# Debian 13's systemd ships this file; it is read before the role's (10-m7guard-...).
TRIXIE_SYSTEMD = ("*  soft core 0\nroot soft core 0\n*  hard core infinity\n"
                  "root hard core infinity\n")
ROLE_STAR = "*    hard    core    0\n*    soft    core    0\n"
ROLE_ROOT = ROLE_STAR + "root    hard    core    0\nroot    soft    core    0\n"


def test_osb_005_reads_the_core_limits_as_pam_limits_resolves_them() -> None:
    effective = os_baseline.effective_core_limits
    # the later entry of a domain wins; root is a domain of its own, `*` never covers it
    final, _ = effective([("/etc/security/limits.d/10-coredump-debian.conf", TRIXIE_SYSTEMD),
                          ("/etc/security/limits.d/10-m7guard-os-baseline-core.conf", ROLE_STAR)])
    assert final == {"*": "0", "root": "infinity"}
    final, _ = effective([("/etc/security/limits.d/10-coredump-debian.conf", TRIXIE_SYSTEMD),
                          ("/etc/security/limits.d/10-m7guard-os-baseline-core.conf", ROLE_ROOT)])
    assert final == {"*": "0", "root": "0"}
    # a file read later that raises the limit again wins ("-" sets hard and soft)
    final, entries = effective([("/etc/security/limits.conf", ""),
                                ("/etc/security/limits.d/10-m7guard-os-baseline-core.conf",
                                 ROLE_ROOT),
                                ("/etc/security/limits.d/99-app.conf", "@dev - core unlimited\n"
                                 "* hard core 1024 # comment\n")])
    assert final == {"*": "1024", "root": "0", "@dev": "unlimited"}
    assert entries[-1] == "/etc/security/limits.d/99-app.conf: * hard core 1024"


def _limits_host(fake_host, limits_d: dict[str, str]) -> Any:
    return fake_host({
        "@@m7g-": files({f"/etc/security/limits.d/{k}": v for k, v in limits_d.items()}),
        "systemd-analyze cat-config": "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
        "systemctl show --property=DefaultLimitCORE": "DefaultLimitCORE=0\n",
    })


def test_osb_005_fails_while_debian_13_lets_root_dump_and_passes_once_root_is_set(
    expect, fake_host
) -> None:
    before = _limits_host(fake_host, {"10-coredump-debian.conf": TRIXIE_SYSTEMD,
                                      "10-m7guard-os-baseline-core.conf": ROLE_STAR})
    message = expect.fail(os_baseline.test_osb_005, host=before, evidence={})
    assert "root may dump infinity" in message and "* may dump" not in message
    after = _limits_host(fake_host, {"10-coredump-debian.conf": TRIXIE_SYSTEMD,
                                     "10-m7guard-os-baseline-core.conf": ROLE_ROOT})
    evidence: dict[str, Any] = {}
    expect.run(os_baseline.test_osb_005, host=after, evidence=evidence)
    assert evidence["effective_hard_core"] == {"*": "0", "root": "0"}
    bookworm = _limits_host(fake_host, {"10-m7guard-os-baseline-core.conf": ROLE_ROOT})
    expect.run(os_baseline.test_osb_005, host=bookworm, evidence={})
    none = _limits_host(fake_host, {})
    assert "no `* hard core 0`" in expect.fail(os_baseline.test_osb_005, host=none, evidence={})
