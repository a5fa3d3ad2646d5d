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
        marker = re.search(r'echo "(@@m7g-[0-9a-f]+) \$f"', command).group(1)
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
