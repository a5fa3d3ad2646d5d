"""The parsers behind the AUD-* checks, on text as the tools print it."""

from __future__ import annotations

import pytest

from m7guard.checks.support.audit_logging_parsers import (
    aide_summary,
    parse_forwards,
    parse_key_values,
    parse_rule,
    parse_rules,
    parse_status,
    parse_time_sources,
    parse_tracking,
    parse_unit_config,
    rule_keys,
    selected_sources,
)

# The same rules as written in rules.d and as `auditctl -l` printed them on vm1.
WRITTEN = """\
## comment
-D
-b 8192
-w /etc/sudoers -p wa -k sudoers
-w /etc/pam.d/ -p wa -k pam
-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged
-a always,exit -F arch=b64 -S execve -C euid!=uid -F auid!=unset -k user_emulation
-a always,exit -F arch=b32 -S adjtimex,settimeofday -k time-change
-a exit,always -F arch=b64 -S chown -S fchown -F auid>=1000 -F auid!=4294967295 -k perm_mod
-e 2
"""
PRINTED = """\
-w /etc/sudoers -p wa -k sudoers
-w /etc/pam.d -p wa -k pam
-a always,exit -S all -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=-1 -F key=privileged
-a always,exit -F arch=b64 -S execve -C uid!=euid -F auid!=-1 -F key=user_emulation
-a always,exit -F arch=b32 -S settimeofday,adjtimex -F key=time-change
-a always,exit -F arch=b64 -S fchown,chown -F auid>=1000 -F auid!=-1 -F key=perm_mod
"""


def test_written_and_printed_rules_compare_equal() -> None:
    written, printed = parse_rules(WRITTEN), parse_rules(PRINTED)
    assert len(written) == len(printed) == 6
    assert written == printed
    assert rule_keys(printed) == {"sudoers", "pam", "privileged", "user_emulation",
                                  "time-change", "perm_mod"}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("-w /etc/sudoers -p wa -k sudoers", "-w /etc/sudoers -p w -k sudoers"),
        ("-w /etc/sudoers -p wa -k sudoers", "-w /etc/sudoers -p wa -k other"),
        ("-a always,exit -F arch=b64 -S chmod -k p", "-a always,exit -F arch=b32 -S chmod -k p"),
        ("-a always,exit -F arch=b64 -S chmod -k p", "-a never,exit -F arch=b64 -S chmod -k p"),
        ("-a always,exit -F arch=b64 -S chmod -F auid>=1000 -k p",
         "-a always,exit -F arch=b64 -S chmod -F auid>=500 -k p"),
        ("-a always,exit -F arch=b64 -S execve -C euid!=uid -k p",
         "-a always,exit -F arch=b64 -S execve -C euid=uid -k p"),
    ],
)
def test_different_rules_do_not_compare_equal(a: str, b: str) -> None:
    assert parse_rule(a) != parse_rule(b)


def test_non_rules_are_skipped() -> None:
    assert parse_rules("No rules\n-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n-e 2\n") == []


def test_status() -> None:
    status = parse_status("enabled 2\nfailure 1\npid 872\nlost 0\n")
    assert status == {"enabled": "2", "failure": "1", "pid": "872", "lost": "0"}


def test_key_values_lower_case_keys_without_comments() -> None:
    conf = parse_key_values("# c\nSpace_Left_Action = SINGLE # why\nlog_file=/var/log/a\n\n")
    assert conf == {"space_left_action": "SINGLE", "log_file": "/var/log/a"}


def test_unit_config_later_files_win() -> None:
    text = """# /etc/systemd/journald.conf
[Journal]
#Storage=auto
Storage=volatile

# /etc/systemd/journald.conf.d/60-audit-logging.conf
[Journal]
Storage=persistent
SystemMaxUse=1G
[Other]
Storage=none
"""
    assert parse_unit_config(text, "Journal") == {"Storage": "persistent", "SystemMaxUse": "1G"}


def test_forwards_omfwd_and_legacy() -> None:
    files = {
        "/etc/rsyslog.d/60.conf": '*.* action(type="omfwd"\n  target="10.1.2.3" port="6514"\n'
                                  '  protocol="tcp" queue.type="LinkedList")\n',
        "/etc/rsyslog.d/70.conf": "auth.* @@collector.example:1514\n*.* @udp.example\n",
        "/etc/rsyslog.conf": '# *.* action(type="omfwd" target="commented" protocol="tcp")\n'
                             'action(type="omfile" file="/var/log/x")\n',
    }
    found = {(f.target, f.port, f.protocol) for f in parse_forwards(files)}
    assert found == {("10.1.2.3", 6514, "tcp"), ("collector.example", 1514, "tcp"),
                     ("udp.example", 514, "udp")}


def test_time_sources() -> None:
    files = {"/etc/chrony/chrony.conf": "server 10.0.0.1 iburst\n# server nope\npool p.example\n"
                                        "driftfile /x\n"}
    assert parse_time_sources(files) == ["server 10.0.0.1", "pool p.example"]


def test_tracking_and_selected_sources() -> None:
    tracking = parse_tracking("Reference ID    : 0AEA0320 (10.234.3.32)\n"
                              "Leap status     : Normal\n")
    assert tracking["Leap status"] == "Normal"
    sources = """MS Name/IP address         Stratum Poll Reach LastRx Last sample
===============================================================================
^* 10.234.3.32                   8   6   377    63     -7ns[ +195ns] +/-   27us
^? 10.0.0.9                      0   6     0     -     +0ns[   +0ns] +/-    0ns
^+ 10.0.0.8                      2   6   377    12     +1us[  +1us] +/-   30us
"""
    assert selected_sources(sources) == ["10.234.3.32", "10.0.0.8"]
    assert selected_sources(sources.replace("^*", "^?").replace("^+", "^-")) == []


def test_aide_summary() -> None:
    report = """AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t1244
  Added entries:\t\t1
  Removed entries:\t\t0
  Changed entries:\t\t1

---------------------------------------------------
Added entries:
---------------------------------------------------

f++++++++++++++++: /etc/m7guard-aide-probe

---------------------------------------------------
Changed entries:
---------------------------------------------------

f > ...    .H..   : /etc/issue
"""
    assert aide_summary(report) == {"added": 1, "removed": 0, "changed": 1,
                                    "paths": ["/etc/m7guard-aide-probe", "/etc/issue"]}
