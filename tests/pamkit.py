"""PAM stacks shared by the checks' unit tests (one definition of each)."""

from __future__ import annotations

# The auth stack kerberos_mfa writes for sshd and sudo (the auth macro of
# roles/kerberos_mfa/templates/pam_auth.j2 with oath, for the m7admins group).
MFA_AUTH = """\
auth    required                    pam_faillock.so preauth
auth    [success=1 default=bad]     pam_krb5.so minimum_uid=1000
auth    [default=die]               pam_faillock.so authfail
auth    [success=2 default=ignore]  pam_succeed_if.so quiet user notingroup m7admins
auth    [success=1 default=bad]     pam_oath.so usersfile=/etc/users.oath window=3 digits=6
auth    [default=die]               pam_faillock.so authfail
auth    required                    pam_faillock.so authsucc
"""
