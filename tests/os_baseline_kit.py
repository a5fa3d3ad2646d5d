"""Helpers of the os_baseline tests (test_os_baseline.py on a container node, test_vm1.py on
vm1): the playbook, the rules, what the role manages on a node, and inputs it must refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m7guard.catalog import load_catalog

PLAYBOOK = "playbooks/os_baseline.yml"
RULES = sorted(rule.id for rule in load_catalog(Path(__file__).resolve().parents[1] / "policies")
               .rules.values() if rule.area == "os_baseline")
# What the role manages on a node, printed so that two snapshots show any change.
SNAPSHOT = (
    "dpkg-query -W -f '${Package} ${Status}\\n' libpam-pwquality cron acct sysstat "
    "unattended-upgrades 2>&1; "
    "md5sum /etc/login.defs /etc/default/useradd /etc/pam.d/common-password /etc/passwd "
    "/etc/shadow /etc/issue /etc/issue.net /etc/motd /var/lib/m7guard/security-pending 2>&1; "
    "for p in /etc/security/pwquality.conf.d /etc/security/limits.d /etc/modprobe.d "
    "/etc/systemd/coredump.conf.d /etc/systemd/system.conf.d /etc/ssh/sshd_config.d "
    "/etc/apt/sources.list.d /etc/apt/apt.conf.d /etc/systemd/system /etc/update-motd.d "
    "/etc/cron.d /home /usr/local/sbin; do ls -la --time-style=+%s.%N \"$p\" 2>&1; done; "
    "cat /proc/modules | cut -d' ' -f1 | sort | md5sum; true"
)
# One bad value per kind of check; each run must stop before any change, naming the variable.
BAD_INPUT: dict[str, Any] = {
    "os_baseline_umask": "022",
    "os_baseline_sshd_max_sessions": 0,
    "os_baseline_allowed_modules": ["nfs"],
    "os_baseline_pwquality": {"minlen": 8, "minclass": 4, "difok": 2, "maxrepeat": 3,
                              "maxsequence": 3, "dictcheck": 1, "enforcing": 1,
                              "enforce_for_root": True},
}
