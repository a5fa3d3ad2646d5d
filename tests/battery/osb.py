"""Breaks of the operating-system baseline rules (OSB-*).

Every rule but OSB-004 applies on the container data nodes and is broken there. OSB-004
(kernel modules) judges modprobe's configuration and /proc/modules, which on a container are
the host kernel's business (notapplicable there): its breaks run on vm1, hardened by
os_baseline's kernel-module step in tests/integration/test_vm1.py.

Most properties live only in files under /etc (login.defs, the PAM and pwquality files,
useradd's defaults, passwd and shadow, the limits and coredump drop-ins, the sshd drop-in,
banners, cron, apt's configuration and the unit links that enable a timer): AIDE watches
/etc, so with the breaks listed in AIDE_WATCHED AUD-008 turns fail on that node too during
the round. Every edit changes a file the role already wrote or the system already had: no
file is created in, or removed from, a directory under /etc (overlayfs copies such a
directory up with another link count, which AIDE rightly reports after the restore).

Each break is shaped to move one rule: the account given a usable password for OSB-001
keeps an inactive limit (so OSB-003 still passes), and the sshd breaks edit only options
the drop-in owns, or LogLevel, which no other rule reads.
"""

from __future__ import annotations

from battery import Break, append, chmod, drop, edit, put_back, save, stopped, watched
from m7guard.checks.os_baseline import PENDING_RECORD

VM = ("vm1",)

LOGIN_DEFS = "/etc/login.defs"
SHADOW = "/etc/shadow"
PASSWD = "/etc/passwd"
PWQUALITY = "/etc/security/pwquality.conf.d/50-m7guard-os-baseline.conf"
COMMON_PASSWORD = "/etc/pam.d/common-password"
USERADD = "/etc/default/useradd"
MODPROBE = "/etc/modprobe.d/m7guard-os-baseline.conf"
LIMITS = "/etc/security/limits.d/10-m7guard-os-baseline-core.conf"
COREDUMP = "/etc/systemd/coredump.conf.d/50-m7guard-os-baseline.conf"
MANAGER = "/etc/systemd/system.conf.d/50-m7guard-os-baseline-core.conf"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-m7guard-os-baseline.conf"
SSHD_CONFIG = "/etc/ssh/sshd_config"
SYSSTAT = "/etc/default/sysstat"
AUTO_UPGRADES = "/etc/apt/apt.conf.d/20auto-upgrades"
SECURITY_SOURCES = "/etc/apt/sources.list.d/m7guard-os-baseline-security.sources"
# A file of a package os_baseline installs, outside every path AIDE watches.
PACKAGE_FILE = "/usr/share/doc/acct/copyright"
# Outside /etc (AIDE) and outside every sticky directory.
WW_FILE = "/usr/local/share/m7guard-battery-world-writable"
WW_DIR = "/var/lib/m7guard-battery-world-writable"
# A yescrypt hash of nothing anybody knows: the account looks as if it had a password.
USABLE = "$y$j9T$m7guardbattery$0000000000000000000000000000000000000000000"

# OSB-014: a stand-in security suite
# (a flat apt repository on the node) that offers a newer acct: apt only simulates with it
# (`apt-get -s`), so the package file it names never exists.
STAND_IN_SUITE = "/var/lib/m7guard-battery-security"
STAND_IN_LISTS = "/var/lib/apt/lists/_var_lib_m7guard-battery-security_*"

LEFT_OUT: dict[str, str] = {}


def _unit_stopped(unit: str) -> tuple[str, str]:
    return stopped(f"systemctl stop {unit}", f"systemctl start {unit}",
                   f"! systemctl is-active -q {unit}")


def _overdue_update(days: int) -> tuple[str, str]:
    """(apply, restore): a stand-in security suite offers a newer acct, `apt-get update` of that
    source alone runs os_baseline's recorder (apt's hook), then the record's first-seen time
    of acct is moved `days` back. Restore puts the sources and the record back and removes
    the suite and its lists."""
    r = STAND_IN_SUITE
    stanza = f"Types: deb\\nURIs: file:{r}\\nSuites: ./\\nTrusted: yes\\n"
    packages = ("Package: acct\\nVersion: %s+m7guardbattery1\\nArchitecture: %s\\n"
                "Maintainer: m7guard battery <root@localhost>\\nFilename: ./acct.deb\\n"
                "Size: 1\\nSHA256: %064d\\nDescription: stand-in update\\n\\n")
    release = ("Origin: m7guard-battery\\nLabel: m7guard-battery\\nSuite: battery-security\\n"
               "Codename: battery-security\\nDate: %s\\nSHA256:\\n %s %s Packages\\n")
    apply = (f"{save(SECURITY_SOURCES)} && {save(PENDING_RECORD)} && mkdir -p {r}/parts && "
             f"printf '{packages}' \"$(dpkg-query -W -f='${{Version}}' acct)\" "
             f"\"$(dpkg --print-architecture)\" 0 > {r}/Packages && "
             f"printf '{release}' \"$(LC_ALL=C date -u -R)\" "
             f"\"$(sha256sum < {r}/Packages | cut -d' ' -f1)\" \"$(stat -c %s {r}/Packages)\" "
             f"> {r}/Release && printf '{stanza}' > {r}/parts/battery.sources && "
             f"printf '\\n{stanza}' >> {SECURITY_SOURCES} && "
             f"apt-get update -q -o Dir::Etc::SourceList=/dev/null "
             f"-o Dir::Etc::SourceParts={r}/parts -o APT::Get::List-Cleanup=0 >/dev/null && "
             f"grep -q '^acct .*+m7guardbattery1 ' {PENDING_RECORD} && "
             f"sed -i \"s/^\\(acct [^ ]* \\)[0-9]*$/\\1$(( $(date +%s) - {days} * 86400 ))/\" "
             f"{PENDING_RECORD}")
    restore = (f"{put_back(SECURITY_SOURCES)} && rm -f {STAND_IN_LISTS} && rm -rf {r} && "
               f"{put_back(PENDING_RECORD)}")
    return apply, restore


def _brk(rule: str, what: str, pair: tuple[str, str], nodes: tuple[str, ...] | None = None,
         aide: bool = True) -> Break:
    brk = Break(rule, what, *pair) if nodes is None else Break(rule, what, *pair, nodes=nodes)
    return watched(brk) if aide else brk


BREAKS: list[Break] = [
    # --- OSB-001 ----------------------------------------------------------------------------
    _brk("OSB-001", "passwords never expire (PASS_MAX_DAYS 99999)",
         edit(LOGIN_DEFS, r"s/^PASS_MAX_DAYS\s.*/PASS_MAX_DAYS\t99999/")),
    _brk("OSB-001", "new passwords hashed with MD5",
         edit(LOGIN_DEFS, r"s/^ENCRYPT_METHOD\s.*/ENCRYPT_METHOD\tMD5/")),
    _brk("OSB-001", "default umask 022",
         edit(LOGIN_DEFS, r"s/^UMASK\s.*/UMASK\t022/")),
    # daemon gets a usable password without aging, but an inactive limit (OSB-003 holds)
    _brk("OSB-001", "an account with a password that never expires",
         edit(SHADOW, rf"s/^daemon:[^:]*:\([0-9]*\):.*$/daemon:{USABLE}:\1:0:99999:7:30::/")),
    # --- OSB-002 ----------------------------------------------------------------------------
    _brk("OSB-002", "minimum length 8",
         edit(PWQUALITY, r"s/^minlen = .*/minlen = 8/")),
    _brk("OSB-002", "pam_pwquality out of the password stack",
         edit(COMMON_PASSWORD, "/pam_pwquality/d")),
    _brk("OSB-002", "the policy only warns (enforcing = 0)",
         append(PWQUALITY, "enforcing = 0")),
    # --- OSB-003 ----------------------------------------------------------------------------
    _brk("OSB-003", "new accounts never lock (INACTIVE=-1)",
         edit(USERADD, r"s/^INACTIVE=.*/INACTIVE=-1/")),
    _brk("OSB-003", "a system account with a login shell",
         edit(PASSWD, r"s#^\(daemon:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\).*#\1/bin/bash#")),
    # --- OSB-004 (vm1) ----------------------------------------------------------------------
    _brk("OSB-004", "dccp loadable (install runs modprobe)",
         edit(MODPROBE, r"s#^install dccp /bin/false$#"
                        r"install dccp /sbin/modprobe --ignore-install dccp#"), nodes=VM),
    _brk("OSB-004", "sctp not blacklisted",
         edit(MODPROBE, "/^blacklist sctp$/d"), nodes=VM),
    _brk("OSB-004", "dccp loaded at run time",
         stopped("modprobe --ignore-install dccp", "modprobe -r dccp",
                 "grep -q '^dccp ' /proc/modules"), nodes=VM, aide=False),
    # --- OSB-005 ----------------------------------------------------------------------------
    _brk("OSB-005", "unlimited core files",
         edit(LIMITS, r"s/^\*\s*hard\s*core\s*0$/*    hard    core    unlimited/")),
    _brk("OSB-005", "root may dump core (`*` does not cover root)",
         edit(LIMITS, r"s/^root\s*hard\s*core\s*0$/root    hard    core    unlimited/")),
    _brk("OSB-005", "services may dump core (DefaultLimitCORE=infinity, re-executed)",
         (edit(MANAGER, "s/^DefaultLimitCORE=0$/DefaultLimitCORE=infinity/")[0]
          + " && systemctl daemon-reexec",
          edit(MANAGER, "")[1] + " && systemctl daemon-reexec")),
    _brk("OSB-005", "systemd-coredump stores dumps",
         edit(COREDUMP, "s/^Storage=none$/Storage=external/")),
    # --- OSB-006 ----------------------------------------------------------------------------
    _brk("OSB-006", "TCP forwarding allowed",
         edit(SSHD_DROPIN, "s/^DisableForwarding yes$/DisableForwarding no/; "
                           "s/^AllowTcpForwarding no$/AllowTcpForwarding yes/")),
    _brk("OSB-006", "10 sessions per connection",
         edit(SSHD_DROPIN, "s/^MaxSessions .*/MaxSessions 10/")),
    _brk("OSB-006", "compression on",
         edit(SSHD_DROPIN, "s/^Compression no$/Compression yes/")),
    _brk("OSB-006", "LogLevel INFO (no key fingerprints)",
         edit(SSHD_CONFIG, "s/^LogLevel VERBOSE$/LogLevel INFO/")),
    # --- OSB-007 ----------------------------------------------------------------------------
    _brk("OSB-007", "the remote banner names the system",
         edit("/etc/issue.net", "1i Debian GNU/Linux 12")),
    _brk("OSB-007", "the local banner prints the kernel (getty escape)",
         append("/etc/issue", r"\s \r \m")),
    _brk("OSB-007", "the dynamic motd prints uname at login",
         chmod("/etc/update-motd.d/10-uname", "0755")),
    _brk("OSB-007", "sshd shows no banner",
         edit(SSHD_DROPIN, "s#^Banner .*#Banner none#")),
    # --- OSB-008 ----------------------------------------------------------------------------
    _brk("OSB-008", "/etc/crontab readable by all",
         chmod("/etc/crontab", "o+r")),
    _brk("OSB-008", "/etc/cron.d open to all",
         chmod("/etc/cron.d", "go+rx")),
    _brk("OSB-008", "/etc/cron.allow writable by its group",
         chmod("/etc/cron.allow", "g+w")),
    # --- OSB-009 ----------------------------------------------------------------------------
    _brk("OSB-009", "/etc/shadow readable by all",
         chmod("/etc/shadow", "o+r")),
    _brk("OSB-009", "/etc/passwd writable by its group",
         chmod("/etc/passwd", "g+w")),
    # --- OSB-013 ----------------------------------------------------------------------------
    _brk("OSB-013", "a file everyone may write outside sticky directories",
         (drop(WW_FILE, "battery")[0] + f" && chmod 0666 {WW_FILE}", drop(WW_FILE, "")[1])),
    _brk("OSB-013", "a directory everyone may write, without the sticky bit",
         (f"mkdir {WW_DIR} && chmod 0777 {WW_DIR}", f"rmdir {WW_DIR}"), aide=False),
    _brk("OSB-013", "a home directory others may read",
         chmod("/home/m7analyst", "o+rx"), aide=False),
    # --- OSB-010 ----------------------------------------------------------------------------
    _brk("OSB-010", "process accounting stopped",
         _unit_stopped("acct.service"), aide=False),
    _brk("OSB-010", "sysstat collection off",
         edit(SYSSTAT, 's/^ENABLED="true"$/ENABLED="false"/')),
    _brk("OSB-010", "sysstat's timer stopped",
         _unit_stopped("sysstat-collect.timer"), aide=False),
    # --- OSB-011 ----------------------------------------------------------------------------
    _brk("OSB-011", "the verification timer stopped",
         _unit_stopped("m7guard-package-verify.timer"), aide=False),
    _brk("OSB-011", "a package's file changed",
         append(PACKAGE_FILE, "changed on the node"), aide=False),
    # --- OSB-012 ----------------------------------------------------------------------------
    _brk("OSB-012", "unattended-upgrade off",
         edit(AUTO_UPGRADES, 's/^APT::Periodic::Unattended-Upgrade "1";$/'
                             'APT::Periodic::Unattended-Upgrade "0";/')),
    _brk("OSB-012", "the security suite disabled",
         append(SECURITY_SOURCES, "Enabled: no")),
    _brk("OSB-012", "apt-daily-upgrade.timer stopped",
         _unit_stopped("apt-daily-upgrade.timer"), aide=False),
    # --- OSB-014 ----------------------------------------------------------------------------
    _brk("OSB-014", "a security update pending for 40 days", _overdue_update(40)),
]
