"""Breaks of the audit logging rules (AUD-*).

AUD-001, AUD-003 and AUD-004 judge the kernel's audit subsystem, which a container shares
with its host (notapplicable there): their breaks run on vm1, the qemu VM with its own
kernel, hardened by kernel_tuning and audit_logging as tests/integration/test_vm1.py leaves
it: with audit_logging_reboot_ok, so the loaded rules are immutable (-e 2) until a reboot, which no
break may cause. The kernel's rules and its audit switch therefore cannot be changed; the
breaks change what is persisted, what auditd does with the records, and the service.
Stopping or killing auditd, or `auditctl -e 0`, is not used: AUD-002 (no daemon receives the
records) and AUD-004 (no record) would fail with it.

The other rules apply on the container data nodes as well and are broken there.

Several properties live only in files under /etc (auditd.conf, audit.rules, rsyslog's and
chrony's configuration, the unit links that enable a service): AIDE watches /etc, so with
the breaks listed in AIDE_WATCHED AUD-008 turns fail on that node too during the round.
Where the property allows it the break stays outside /etc (a drop-in under /usr/lib, a mode
under /var/log, a stopped service).
"""

from __future__ import annotations

import shlex

from battery import (
    AIDE_WATCHED,
    SAVE,
    Break,
    append,
    chmod,
    disabled,
    drop,
    edit,
    save,
    saved,
    stopped,
    tag,
    watched,
)

VM = ("vm1",)
CONTAINERS = ("node1", "node2", "node3")

AUDITD_CONF = "/etc/audit/auditd.conf"
AUDIT_RULES = "/etc/audit/audit.rules"
JOURNALD_DROPIN = "/usr/lib/systemd/journald.conf.d/90-local.conf"
CHRONY_CONF = "/etc/chrony/chrony.conf"
RSYSLOG_FORWARD = "/etc/rsyslog.d/60-audit-logging-forward.conf"
AIDE_DB = "/var/lib/aide/aide.db"
AIDE_TIMERS = ("audit-logging-aide-check.timer", "dailyaidecheck.timer")

LEFT_OUT: dict[str, str] = {
    "AUD-010": "needs /opt/mapr/bin/maprcli (condition mapr_installed): /opt/mapr does not "
               "exist on the lab nodes, so the rule is notapplicable",
}

def _drop(path: str, lines: list[str], check: str) -> tuple[str, str]:
    return drop(path, " ".join(shlex.quote(line) for line in lines), check)


def _journald(setting: str) -> tuple[str, str]:
    """A journald drop-in later than the role's (60-audit-logging.conf) with setting."""
    key = setting.split("=", 1)[0]
    last = (f"systemd-analyze cat-config systemd/journald.conf | grep '^{key}=' | "
            "tail -n 1")
    return _drop(JOURNALD_DROPIN, ["[Journal]", setting],
                 f"[ \"$({last})\" = {shlex.quote(setting)} ]")


BREAKS: list[Break] = []

# --- AUD-001: auditd runs, starts at boot, receives the records (vm1) ----------------------
# Only "enabled" can be broken alone: with auditd stopped AUD-002 and AUD-004 fail too, and
# the kernel's audit switch (-e 0) is locked by the immutable rules (AUD-003 reads it too).
BREAKS.append(watched(Break("AUD-001", "auditd disabled at boot",
                             *disabled("auditd.service"), nodes=VM)))

# --- AUD-002: auditd.conf (containers: the file is judged there; no daemon times) ----------
for _what, _sed in (
    ("write_logs no", "s/^write_logs = yes$/write_logs = no/"),
    ("max_log_file_action IGNORE", "s/^max_log_file_action = .*/max_log_file_action = IGNORE/"),
    ("space_left_action IGNORE", "s/^space_left_action = .*/space_left_action = IGNORE/"),
    ("admin_space_left_action SUSPEND",
     "s/^admin_space_left_action = .*/admin_space_left_action = SUSPEND/"),
    ("disk_full_action SUSPEND", "s/^disk_full_action = .*/disk_full_action = SUSPEND/"),
    ("disk_error_action IGNORE", "s/^disk_error_action = .*/disk_error_action = IGNORE/"),
    ("space_left below admin_space_left", "s/^space_left = .*/space_left = 50/"),
    ("max_log_file 2 MiB", "s/^max_log_file = .*/max_log_file = 2/"),
):
    BREAKS.append(watched(Break("AUD-002", _what, *edit(AUDITD_CONF, _sed))))
BREAKS.append(watched(Break("AUD-002", "auditd.conf readable by others",
                             *chmod(AUDITD_CONF, "o+r"))))

# --- AUD-003: persisted rules = loaded rules (vm1) -----------------------------------------
# The loaded rules are immutable: the persisted file is what changes. The required keys and
# the enabled state can only change in the kernel, which the immutable rules forbid.
BREAKS.append(watched(Break(
    "AUD-003", "a loaded rule removed from audit.rules",
    *edit(AUDIT_RULES, "\\#^-w /etc/localtime -p wa -k time-change$#d"), nodes=VM)))
BREAKS.append(watched(Break(
    "AUD-003", "a rule in audit.rules that is not loaded",
    *append(AUDIT_RULES, "-w /usr/local/bin -p wa -k local_bin"), nodes=VM)))

# --- AUD-004: a record reaches the log (vm1) -----------------------------------------------
# auditd frozen (SIGSTOP): it stays active, enabled and the kernel's receiver, with the
# rules loaded, but writes nothing; the kernel holds the records in its backlog (8192)
# until SIGCONT, when auditd writes them.
_AUDITD_PID = "pid=$(systemctl show -p MainPID --value auditd.service)"
BREAKS.append(Break(
    "AUD-004", "auditd frozen: records are not written",
    f"{_AUDITD_PID} && [ \"$pid\" -gt 0 ] && kill -STOP \"$pid\" && sleep 1 && "
    "grep -q '^State:[[:space:]]*T' /proc/$pid/status",
    f"{_AUDITD_PID} && {{ [ \"$pid\" -eq 0 ] || kill -CONT \"$pid\"; }}",
    nodes=VM))

# --- AUD-005: journald persistent, with limits (vm1) -----------------------------------------
# A package's drop-in under /usr/lib, later than the role's; journald reads it at its next
# start (the check judges the configuration). On the container nodes /var/log/journal is a
# tmpfs the runtime chooses, so AUD-005 is notapplicable there: the breaks run on vm1.
BREAKS.append(Break("AUD-005", "a later journald drop-in sets Storage=volatile",
                    *_journald("Storage=volatile"), nodes=VM))
BREAKS.append(Break("AUD-005", "a later journald drop-in unsets SystemMaxUse",
                    *_journald("SystemMaxUse="), nodes=VM))

# --- AUD-006: log modes ---------------------------------------------------------------------
BREAKS.append(Break("AUD-006", "/var/log/audit open to others",
                    *chmod("/var/log/audit", "0755")))
# No auditd writes audit.log in a container: the file exists on vm1.
BREAKS.append(Break("AUD-006", "audit.log readable by others",
                    *chmod("/var/log/audit/audit.log", "0644"), nodes=VM))
BREAKS.append(Break("AUD-006", "a log file under /var/log readable by others",
                    *chmod("/var/log/dpkg.log", "o+r")))
BREAKS.append(Break("AUD-006", "wtmp (a readable exception) writable by others",
                    *chmod("/var/log/wtmp", "o+w")))

# --- AUD-007: chrony (containers) ------------------------------------------------------------
# "Synchronised" is not broken alone: it needs the time source made unreachable (a firewall
# or network change other rules judge) or a wait for chrony to give up on it.
BREAKS.append(Break("AUD-007", "chrony stopped", *stopped(
    "systemctl stop chrony.service",
    "systemctl start chrony.service && chronyc -n waitsync 60 0 0 1 >/dev/null",
    "! systemctl is-active -q chrony.service")))
BREAKS.append(watched(Break("AUD-007", "chrony disabled at boot",
                             *disabled("chrony.service"))))
BREAKS.append(watched(Break("AUD-007", "no time source configured",
                             *edit(CHRONY_CONF, "s/^server /#server /"))))

# --- AUD-008: AIDE (containers) ---------------------------------------------------------------
_TOOL = "/usr/sbin/sysmon"
_MADE_TOOL = f"{SAVE}/made_{tag(_TOOL)}"
BREAKS.append(Break(
    "AUD-008", "a program added to /usr/sbin",
    f"mkdir -p {SAVE} && [ ! -e {_TOOL} ] && touch {_MADE_TOOL} && "
    f"install -m 0755 /bin/true {_TOOL}",
    f"{{ [ ! -e {_MADE_TOOL} ] || {{ rm -f {_TOOL} && rm -f {_MADE_TOOL}; }}; }}"))
# Either timer counts (Debian's aide-common has its own): every active one is stopped.
_STOPPED = f"{SAVE}/aide-timers-stopped"
BREAKS.append(Break(
    "AUD-008", "the scheduled AIDE checks stopped",
    f"mkdir -p {SAVE} && : > {_STOPPED} && for t in {' '.join(AIDE_TIMERS)}; do "
    f"if systemctl is-active -q $t; then echo $t >> {_STOPPED} && systemctl stop $t || exit 1; "
    f"fi; done && [ -s {_STOPPED} ] && "
    + " && ".join(f"! systemctl is-active -q {t}" for t in AIDE_TIMERS),
    f"[ ! -e {_STOPPED} ] || {{ for t in $(cat {_STOPPED}); do systemctl start $t || exit 1; "
    f"done; rm -f {_STOPPED}; }}"))
_SAVED_DB = saved(AIDE_DB)
BREAKS.append(Break("AUD-008", "the AIDE baseline database removed",
                    f"{save(AIDE_DB)} && rm -f {AIDE_DB}",
                    f"{{ [ -e {AIDE_DB} ] || cp -a {_SAVED_DB} {AIDE_DB}; }} && rm -f {_SAVED_DB}"))

# --- AUD-009: forwarding (containers) ---------------------------------------------------------
# syslog.socket would start rsyslog again (journald forwards to it): both are stopped.
BREAKS.append(Break("AUD-009", "rsyslog stopped", *stopped(
    "systemctl stop syslog.socket rsyslog.service",
    "systemctl start syslog.socket rsyslog.service",
    "! systemctl is-active -q rsyslog.service")))
# Disabling removes the syslog.service alias that syslog.socket activates; while it is gone
# the socket can fail and stop rsyslog with it (Requires=). The restore enables rsyslog and
# starts the socket and the service again: the hardened state, active and enabled.
BREAKS.append(watched(Break(
    "AUD-009", "rsyslog disabled at boot", disabled("rsyslog.service")[0],
    "systemctl enable -q rsyslog.service && systemctl start syslog.socket rsyslog.service && "
    "systemctl is-active -q rsyslog.service")))
BREAKS.append(watched(Break("AUD-009", "forwarding over UDP instead of TCP",
                             *edit(RSYSLOG_FORWARD, 's/protocol="tcp"/protocol="udp"/'))))

__all__ = ["AIDE_WATCHED", "BREAKS", "LEFT_OUT", "SAVE"]
