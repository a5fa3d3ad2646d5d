"""Breaks of the identity rules (IDN-*): Kerberos client and keytab, the PAM stacks of sshd
and sudo, sshd's effective settings, idle sessions and failed-login lockout.

Many IDN rules read the same evidence, so each break is shaped to change one rule only:
- /etc/krb5.conf: IDN-001 and IDN-002; IDN-003 takes the default realm from it (so
  default_realm itself is not broken: the host key check of IDN-003 would fail with it).
- /etc/pam.d/sshd and /etc/pam.d/sudo: IDN-004 (pam_krb5 on every way to success),
  IDN-005 (pam_oath for administrators) and IDN-010 (pam_faillock) walk the same auth
  stack; each edit keeps the other two properties of the stack as they were.
- `sshd -T` (global and per connection): IDN-006, IDN-007, IDN-008, IDN-009 and IDN-011.
  sshd keeps the first value it reads and /etc/ssh/sshd_config sets its globals before the
  drop-in Include, so global breaks edit that line in place; keywords the main file does
  not set go on its first line; per-connection breaks append a Match block at the end of
  sshd_config (after the automation account's block, which a new Match line ends).
  The automation account (root, public key only from the admin networks) is the
  recorded exemption: PermitRootLogin of IDN-007 and the key-only test of IDN-006 both
  look at it, so it is never touched. Every edit keeps sshd_config valid (an invalid file
  would make every sshd rule `error`) and sshd is never reloaded: `sshd -T` reads the
  files fresh, and the controller's running sshd and PAM login are unchanged.
IDN-011 already fails on a hardened node (the automation account logs in with a key
alone) and is waived there through the controller's waivers file, so no break can change
its state; breaks that add single-factor contexts leave it `waived`.
"""

from __future__ import annotations

import shlex

from battery import Break, append, edit, put_back, save

SSHD_CONFIG = "/etc/ssh/sshd_config"
KRB5_CONF = "/etc/krb5.conf"
KEYTAB = "/etc/krb5.keytab"
PAM_SSHD = "/etc/pam.d/sshd"
PAM_SUDO = "/etc/pam.d/sudo"
OATH = "/etc/users.oath"
FAILLOCK = "/etc/security/faillock.conf"
TMOUT_SH = "/etc/profile.d/m7guard-tmout.sh"
PROFILE = "/etc/profile"

LEFT_OUT: dict[str, str] = {
    "IDN-011": "fails on every hardened node by design (the automation account's key-only "
               "exemption) and is waived for the whole rule through the controller's waivers "
               "file: any break of it is still reported `waived`, never `fail`",
    "IDN-012": "reads the Data Fabric security files in /opt/mapr/conf, which the lab nodes do "
               "not have (notapplicable: condition mapr_installed)",
    "IDN-013": "reads /opt/mapr/conf/mapr-clusters.conf, absent on the lab nodes "
               "(notapplicable: condition mapr_installed)",
    "IDN-014": "reads /opt/mapr/conf/mapr.login.conf and the keytab mapr.keytab, absent on the "
               "lab nodes (notapplicable: condition mapr_installed)",
}


def _first_line(text: str) -> tuple[str, str]:
    """(apply, restore) that put a keyword sshd_config does not set on its first line (sshd
    keeps the first value it reads). Not a new drop-in file: on the container nodes a file
    created and removed in /etc/ssh/sshd_config.d leaves that directory copied up by overlayfs
    with another link count, which AIDE (AUD-008) rightly reports after the restore."""
    return edit(SSHD_CONFIG, f"1i {text}")


def _mode(path: str, how: str, check: str) -> tuple[str, str]:
    """(apply, restore) that chmod/chown path; check is the stat -c output it must give."""
    return (f"{save(path)} && {how} {path} && [ \"$(stat -c '%U:%G %a' {path})\" = '{check}' ]",
            put_back(path))


def _remove(path: str) -> tuple[str, str]:
    return f"{save(path)} && rm {path} && [ ! -e {path} ]", put_back(path)


# Rewrites a MIT keytab (format 0x0502) in place: `rename` gives the host/ keys another
# service name (nfs/), `rc4` appends an RC4 (arcfour-hmac, enctype 23) key for the host
# principal, as merged from an old keytab. The key bytes are random, never printed.
_KEYTAB_PY = r"""
import os, struct, sys
path, mode = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
if data[:2] != b"\x05\x02":
    sys.exit(path + ": not a version 0x502 keytab")

def counted(buf, at):
    n = struct.unpack_from(">H", buf, at)[0]
    return buf[at + 2:at + 2 + n], at + 2 + n

def entry(realm, comps, rest):
    body = struct.pack(">HH", len(comps), len(realm)) + realm
    body += b"".join(struct.pack(">H", len(c)) + c for c in comps) + rest
    return struct.pack(">i", len(body)) + body

out, pos, host = [data[:2]], 2, None
while pos + 4 <= len(data):
    size = struct.unpack_from(">i", data, pos)[0]
    raw = data[pos + 4:pos + 4 + abs(size)]
    pos += 4 + abs(size)
    if size <= 0:
        out.append(struct.pack(">i", size) + raw)
        continue
    realm, at = counted(raw, 2)
    comps = []
    for _ in range(struct.unpack_from(">H", raw, 0)[0]):
        c, at = counted(raw, at)
        comps.append(c)
    if comps[0] == b"host":
        host = host or (realm, list(comps), raw[at:at + 9])
        if mode == "rename":
            comps[0] = b"nfs"
    out.append(entry(realm, comps, raw[at:]))
if host is None:
    sys.exit(path + ": no host/ key")
if mode == "rc4":
    realm, comps, head = host
    out.append(entry(realm, comps, head[:8] + bytes([99]) + struct.pack(">HH", 23, 16)
                     + os.urandom(16) + struct.pack(">I", 99)))
with open(path, "r+b") as f:
    f.write(b"".join(out))
    f.truncate()
"""


def _keytab(mode: str, check: str) -> tuple[str, str]:
    return (f"{save(KEYTAB)} && python3 -c {shlex.quote(_KEYTAB_PY)} {KEYTAB} {mode} && {check}",
            put_back(KEYTAB))


def _brk(rule: str, what: str, pair: tuple[str, str], expect: str = "fail") -> Break:
    return Break(rule, what, pair[0], pair[1], expect)


# A Match block for an account no Match block names yet (appended after the automation
# account's block: the new Match line ends that block).
def _match_user(user: str, *settings: str) -> tuple[str, str]:
    return append(SSHD_CONFIG, "\n".join([f"Match User {user}", *(f"    {s}" for s in settings)]))


# SHA-1 RSA user keys for one account, under the user-key list's name that sshd -T prints:
# PubkeyAcceptedKeyTypes before OpenSSH 8.5 (Debian 11's 8.4 knows the new name but refuses it
# in a Match block), PubkeyAcceptedAlgorithms from 8.5.
def _match_user_rsa_keys(user: str) -> tuple[str, str]:
    name = ("$(sshd -T 2>/dev/null | grep -qi '^pubkeyacceptedalgorithms ' "
            "&& echo PubkeyAcceptedAlgorithms || echo PubkeyAcceptedKeyTypes)")
    return (f"{save(SSHD_CONFIG)} && name={name} && "
            f"printf 'Match User {user}\\n    %s +ssh-rsa\\n' \"$name\" >> {SSHD_CONFIG}",
            put_back(SSHD_CONFIG))


# pam_krb5's line in either stack (sudo's carries no_ccache).
_KRB5_LINE = r"s/pam_krb5\.so.*$/pam_unix.so/"

BREAKS: list[Break] = [
    # --- IDN-001: /etc/krb5.conf (realm, KDCs, DNS guesses, lifetimes) ----------------------
    # default_realm is not broken alone: IDN-003 looks for host/<node>@<default_realm>.
    _brk("IDN-001", "realm's KDCs removed (found through DNS)",
         edit(KRB5_CONF, r"/^[[:space:]]*kdc[[:space:]]*=/d")),
    _brk("IDN-001", "dns_lookup_kdc true",
         edit(KRB5_CONF, r"s/^\([[:space:]]*dns_lookup_kdc[[:space:]]*=\).*/\1 true/")),
    _brk("IDN-001", "dns_lookup_realm true",
         edit(KRB5_CONF, r"s/^\([[:space:]]*dns_lookup_realm[[:space:]]*=\).*/\1 true/")),
    _brk("IDN-001", "dns_canonicalize_hostname true",
         edit(KRB5_CONF,
              r"s/^\([[:space:]]*dns_canonicalize_hostname[[:space:]]*=\).*/\1 true/")),
    _brk("IDN-001", "rdns line removed (default true)",
         edit(KRB5_CONF, r"/^[[:space:]]*rdns[[:space:]]*=/d")),
    _brk("IDN-001", "ticket_lifetime 1 day",
         edit(KRB5_CONF, r"s/^\([[:space:]]*ticket_lifetime[[:space:]]*=\).*/\1 24h/")),
    _brk("IDN-001", "renew_lifetime 30 days",
         edit(KRB5_CONF, r"s/^\([[:space:]]*renew_lifetime[[:space:]]*=\).*/\1 30d/")),
    # --- IDN-002: /etc/krb5.conf encryption types ---------------------------------------------
    _brk("IDN-002", "allow_weak_crypto true",
         edit(KRB5_CONF, r"s/^\([[:space:]]*allow_weak_crypto[[:space:]]*=\).*/\1 true/")),
    _brk("IDN-002", "permitted_enctypes adds rc4-hmac",
         edit(KRB5_CONF, r"s/^\([[:space:]]*permitted_enctypes[[:space:]]*=.*[^[:space:]]\)"
                         r"[[:space:]]*$/\1 rc4-hmac/")),
    _brk("IDN-002", "default_tkt_enctypes adds des3-cbc-sha1",
         edit(KRB5_CONF, r"s/^\([[:space:]]*default_tkt_enctypes[[:space:]]*=.*[^[:space:]]\)"
                         r"[[:space:]]*$/\1 des3-cbc-sha1/")),
    _brk("IDN-002", "default_tgs_enctypes adds rc4-hmac",
         edit(KRB5_CONF, r"s/^\([[:space:]]*default_tgs_enctypes[[:space:]]*=.*[^[:space:]]\)"
                         r"[[:space:]]*$/\1 rc4-hmac/")),
    # --- IDN-003: /etc/krb5.keytab ------------------------------------------------------------
    _brk("IDN-003", "host keytab removed", _remove(KEYTAB)),
    _brk("IDN-003", "host keytab world-readable (0644)",
         _mode(KEYTAB, "chmod 0644", "root:root 644")),
    _brk("IDN-003", "host keytab group adm",
         _mode(KEYTAB, "chgrp adm", "root:adm 600")),
    _brk("IDN-003", "no host/ key (keys renamed to nfs/)",
         _keytab("rename", f"klist -k {KEYTAB} | grep -q ' nfs/' "
                           f"&& ! klist -k {KEYTAB} | grep -q ' host/'")),
    _brk("IDN-003", "RC4 key added for the host principal",
         _keytab("rc4", f"klist -k -e {KEYTAB} | grep -q arcfour")),
    # --- IDN-004: pam_krb5 on every way to success --------------------------------------------
    # pam_krb5 replaced by pam_unix with the same control: pam_oath (IDN-005) and the
    # faillock counting of the factor's failure (IDN-010) stay as they were.
    _brk("IDN-004", "sshd: local passwords (pam_unix) instead of pam_krb5",
         edit(PAM_SSHD, _KRB5_LINE)),
    _brk("IDN-004", "sudo: local passwords (pam_unix) instead of pam_krb5",
         edit(PAM_SUDO, _KRB5_LINE)),
    # --- IDN-005: pam_oath for administrators, the seeds file, enrolment ----------------------
    # The code is asked of another group: administrators (m7admins) skip pam_oath; the stack
    # still needs pam_krb5 (IDN-004) and counts every failure (IDN-010).
    _brk("IDN-005", "sshd: code asked of group sudo, not the administrators",
         edit(PAM_SSHD, r"s/\(pam_succeed_if\.so.* notingroup \)[^[:space:]]*/\1sudo/")),
    _brk("IDN-005", "sudo: code asked of group sudo, not the administrators",
         edit(PAM_SUDO, r"s/\(pam_succeed_if\.so.* notingroup \)[^[:space:]]*/\1sudo/")),
    _brk("IDN-005", "sshd: pam_oath expects 8 digits",
         edit(PAM_SSHD, r"s/\(pam_oath\.so.*\)digits=6/\1digits=8/")),
    _brk("IDN-005", "seeds file world-readable (0644)", _mode(OATH, "chmod 0644", "root:root 644")),
    _brk("IDN-005", "seeds file group adm", _mode(OATH, "chgrp adm", "root:adm 600")),
    _brk("IDN-005", "an administrator's enrolment removed",
         edit(OATH, r"0,/^HOTP/{/^HOTP/d}")),
    # --- IDN-006: keyboard-interactive PAM on every way in ------------------------------------
    _brk("IDN-006", "global AuthenticationMethods accepts a key alone",
         edit(SSHD_CONFIG, r"s/^AuthenticationMethods /&publickey /")),
    _brk("IDN-006", "UsePAM no", edit(SSHD_CONFIG, r"s/^UsePAM yes$/UsePAM no/")),
    # The exemption's block gets PasswordAuthentication no, so it stays key-only (IDN-007
    # accepts root there only while it is).
    _brk("IDN-006", "global PasswordAuthentication yes",
         edit(SSHD_CONFIG, r"s/^PasswordAuthentication no$/PasswordAuthentication yes/;"
                           r"s/^\([[:space:]]\{1,\}\)AuthenticationMethods publickey$/"
                           r"&\n\1PasswordAuthentication no/")),
    _brk("IDN-006", "Match block: an unrecorded account logs in with a key alone",
         _match_user("svc-backup", "AuthenticationMethods publickey")),
    _brk("IDN-006", "Match block: keyboard-interactive off for an account",
         _match_user("svc-report", "KbdInteractiveAuthentication no")),
    # --- IDN-007: root, empty passwords, tries, grace time, rhosts, user environment ----------
    # The exemption's own block (root by key from the admin networks) is left alone: a
    # break there is also a break of IDN-006's exemption check.
    _brk("IDN-007", "global PermitRootLogin yes",
         edit(SSHD_CONFIG, r"s/^PermitRootLogin no$/PermitRootLogin yes/")),
    _brk("IDN-007", "global PermitEmptyPasswords yes",
         edit(SSHD_CONFIG, r"s/^PermitEmptyPasswords no$/PermitEmptyPasswords yes/")),
    _brk("IDN-007", "global MaxAuthTries 10",
         edit(SSHD_CONFIG, r"s/^MaxAuthTries .*/MaxAuthTries 10/")),
    _brk("IDN-007", "LoginGraceTime 120 s",
         edit(SSHD_CONFIG, r"s/^LoginGraceTime .*/LoginGraceTime 120/")),
    _brk("IDN-007", "global HostbasedAuthentication yes",
         edit(SSHD_CONFIG, r"s/^HostbasedAuthentication no$/HostbasedAuthentication yes/")),
    _brk("IDN-007", "IgnoreRhosts no", edit(SSHD_CONFIG, r"s/^IgnoreRhosts yes$/IgnoreRhosts no/")),
    _brk("IDN-007", "PermitUserEnvironment yes",
         edit(SSHD_CONFIG, r"s/^PermitUserEnvironment no$/PermitUserEnvironment yes/")),
    _brk("IDN-007", "Match block: empty passwords for an account",
         _match_user("svc-kiosk", "PermitEmptyPasswords yes")),
    _brk("IDN-007", "Match block: MaxAuthTries 20 for an account",
         _match_user("svc-sync", "MaxAuthTries 20")),
    _brk("IDN-007", "Match block: host-based login for an account",
         _match_user("svc-cron", "HostbasedAuthentication yes")),
    _brk("IDN-007", "Match block: PermitRootLogin yes for root from another network",
         append(SSHD_CONFIG, "Match User root Address 192.0.2.0/24\n    PermitRootLogin yes")),
    # --- IDN-008: ciphers, MACs, key exchange, signature algorithms ---------------------------
    _brk("IDN-008", "Ciphers adds aes256-cbc", edit(SSHD_CONFIG, r"s/^Ciphers .*/&,aes256-cbc/")),
    _brk("IDN-008", "MACs adds hmac-sha1", edit(SSHD_CONFIG, r"s/^MACs .*/&,hmac-sha1/")),
    _brk("IDN-008", "KexAlgorithms adds diffie-hellman-group14-sha1",
         edit(SSHD_CONFIG, r"s/^KexAlgorithms .*/&,diffie-hellman-group14-sha1/")),
    _brk("IDN-008", "first line: HostKeyAlgorithms +ssh-rsa",
         _first_line("HostKeyAlgorithms +ssh-rsa")),
    _brk("IDN-008", "first line: PubkeyAcceptedAlgorithms +ssh-rsa",
         _first_line("PubkeyAcceptedAlgorithms +ssh-rsa")),
    _brk("IDN-008", "first line: CASignatureAlgorithms +ssh-rsa",
         _first_line("CASignatureAlgorithms +ssh-rsa")),
    _brk("IDN-008", "Match block: SHA-1 RSA user keys for an account",
         _match_user_rsa_keys("svc-legacy")),
    # --- IDN-009: ChannelTimeout and TMOUT ----------------------------------------------------
    _brk("IDN-009", "ChannelTimeout session:shell 1 hour",
         edit(SSHD_CONFIG, r"s/^ChannelTimeout .*/ChannelTimeout session:shell=3600/")),
    _brk("IDN-009", "Match block: idle shells never close for an account",
         _match_user("svc-monitor", "ChannelTimeout session:shell=0")),
    _brk("IDN-009", "TMOUT 3600 in the profile",
         edit(TMOUT_SH, r"s/^\([[:space:]]*TMOUT=\)[0-9]*/\13600/")),
    _brk("IDN-009", "TMOUT not read-only", edit(TMOUT_SH, r"/^[[:space:]]*readonly TMOUT/d")),
    _brk("IDN-009", "TMOUT profile script removed", _remove(TMOUT_SH)),
    # The profile scripts stay as they were; a login shell no longer runs them.
    _brk("IDN-009", "/etc/profile runs no profile.d script (login shells have no TMOUT)",
         edit(PROFILE, r"s|/etc/profile\.d/\*\.sh|/etc/profile.d/*.local|")),
    # --- IDN-010: pam_faillock ----------------------------------------------------------------
    _brk("IDN-010", "sshd: pam_faillock preauth removed",
         edit(PAM_SSHD, r"/pam_faillock\.so.*preauth/d")),
    _brk("IDN-010", "sudo: pam_faillock preauth optional (locked accounts get in)",
         edit(PAM_SUDO, r"s/^auth[[:space:]]\{1,\}required\([[:space:]]\{1,\}pam_faillock\.so"
                        r".*preauth\)/auth    optional\1/")),
    _brk("IDN-010", "sshd: a failed Kerberos password ends the stack uncounted",
         edit(PAM_SSHD, r"s/\[success=1 default=bad\]\([[:space:]]*pam_krb5\.so\)/"
                        r"[success=1 default=die]\1/")),
    _brk("IDN-010", "sudo: a failed code ends the stack uncounted",
         edit(PAM_SUDO, r"s/\[success=1 default=bad\]\([[:space:]]*pam_oath\.so\)/"
                        r"[success=1 default=die]\1/")),
    _brk("IDN-010", "deny = 20", edit(FAILLOCK, r"s/^[[:space:]]*deny[[:space:]]*=.*/deny = 20/")),
    _brk("IDN-010", "unlock_time = 60",
         edit(FAILLOCK, r"s/^[[:space:]]*unlock_time[[:space:]]*=.*/unlock_time = 60/")),
]
