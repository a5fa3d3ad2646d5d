"""Class 3 of issue 13: every construct of a policy language is evaluated, or the check
reports `error` naming it; none is skipped on the way to `pass`."""

from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Any

import pytest
from pamkit import MFA_AUTH

from m7guard.checks import kerberos_mfa
from m7guard.checks.support import files
from m7guard.checks.support.sshd import Context

MFA = "publickey,keyboard-interactive:pam gssapi-with-mic,keyboard-interactive:pam"
SECOND_FACTOR = (f"authenticationmethods {MFA}\nkbdinteractiveauthentication yes\nusepam yes\n"
                 "passwordauthentication no\npermitemptypasswords no\npermitrootlogin no\n"
                 "channeltimeout session:shell=900\nhostbasedauthentication no\nignorerhosts yes\n"
                 "permituserenvironment no\nmaxauthtries 4\nlogingracetime 60\n")
KEY_ONLY = SECOND_FACTOR.replace(f"authenticationmethods {MFA}", "authenticationmethods publickey")
BASE = "UsePAM yes\nAuthenticationMethods publickey,keyboard-interactive:pam\n"
PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "bob:x:1001:100::/home/bob:/bin/bash\n"
          "carol:x:1002:1500::/home/carol:/bin/bash\n"
          "svc-backup:x:1003:100::/home/svc-backup:/bin/sh\n"
          "m7auto:x:1004:100::/home/m7auto:/bin/sh\n")
GROUP = "root:x:0:\nusers:x:100:\nops:x:1500:bob\n"


@pytest.fixture(autouse=True)
def marker(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(kerberos_mfa, "new_marker", lambda: "@@M")
    monkeypatch.setattr(files, "new_marker", lambda: "@@M")
    return "@@M"


def sshd_host(fake_host, files: dict[str, str], single_factor) -> Any:
    """A node whose `sshd -T -C` gives KEY_ONLY to the connections `single_factor(spec)`
    names and SECOND_FACTOR to every other; its config files are `files`."""

    def read(command: str) -> str:
        patterns = re.search(r"for f in (.*?); do", command).group(1).split()
        shown = [p for p in files if any(fnmatch.fnmatch(p, pat) for pat in patterns)]
        return "".join(f"@@M {p}\n{files[p]}\n" for p in sorted(shown)) + "@@M end\n"

    def sshd(command: str) -> str:
        out = []
        for line in shlex.split(command)[2].splitlines():
            head = re.match(r"echo '(@@M [^']*)'", line).group(1)
            out.append(head)
            spec = re.search(r"-C (\S+)", line)
            if spec:
                fields = dict(kv.split("=", 1) for kv in shlex.split(spec.group(1))[0].split(","))
                out.append(KEY_ONLY if single_factor(fields) else SECOND_FACTOR)
            elif "global" in head:
                out.append(SECOND_FACTOR)
        return "\n".join(out) + "\n"

    return fake_host({"getent passwd": f"{PASSWD}@@M\n{GROUP}", "sshd -T": sshd,
                      "for f in": read})


def view(host: Any) -> kerberos_mfa.SshdView:
    return kerberos_mfa.sshd.__wrapped__(host)


def config(extra: str, **more: str) -> dict[str, str]:
    return {"/etc/ssh/sshd_config": BASE + extra, **more}


def test_match_group_exemption_fails_idn_006_and_011(expect, fake_host) -> None:
    host = sshd_host(fake_host, config("Match Group ops\n  AuthenticationMethods publickey\n"),
                     lambda f: f["user"] in ("bob", "carol"))
    sshd = view(host)
    assert "bob from" in expect.fail(kerberos_mfa.test_idn_006, sshd=sshd, evidence={})
    assert "bob from" in expect.fail(kerberos_mfa.test_idn_011, sshd=sshd, evidence={})


def test_match_group_counts_members_by_primary_group(expect, fake_host) -> None:
    host = sshd_host(fake_host, config("Match Group ops\n  AuthenticationMethods publickey\n"),
                     lambda f: f["user"] == "carol")
    evidence: dict[str, Any] = {}
    assert "carol from" in expect.fail(kerberos_mfa.test_idn_011, sshd=view(host),
                                       evidence=evidence)
    assert evidence["evaluated"]["match_groups"] == {"ops": ["bob", "carol"]}


def test_wildcard_match_user_is_evaluated(expect, fake_host) -> None:
    host = sshd_host(fake_host, config("Match User svc-*\n  AuthenticationMethods publickey\n"),
                     lambda f: f["user"].startswith("svc-"))
    message = expect.fail(kerberos_mfa.test_idn_006, sshd=view(host), evidence={})
    assert "svc-backup from" in message


def test_local_port_block_is_evaluated(expect, fake_host) -> None:
    host = sshd_host(fake_host,
                     config("Port 22\nPort 2222\nMatch LocalPort 2222\n"
                            "  AuthenticationMethods publickey\n"),
                     lambda f: f.get("lport") == "2222")
    assert "on port 2222" in expect.fail(kerberos_mfa.test_idn_011, sshd=view(host), evidence={})


def test_match_in_an_included_file_is_evaluated(expect, fake_host) -> None:
    files = config("Include /etc/ssh/extra/*.conf\n",
                   **{"/etc/ssh/extra/ops.conf": "Match User alice\n  AuthenticationMethods "
                                                 "publickey\n"})
    host = sshd_host(fake_host, files, lambda f: f["user"] == "alice")
    assert "alice from" in expect.fail(kerberos_mfa.test_idn_011, sshd=view(host), evidence={})


def test_a_match_criterion_the_check_cannot_evaluate_is_an_error(expect, fake_host) -> None:
    host = sshd_host(fake_host, config("Match Tagged ops\n  AuthenticationMethods publickey\n"),
                     lambda f: False)
    sshd = view(host)
    assert "tagged" in expect.error(kerberos_mfa.test_idn_006, sshd=sshd, evidence={})
    assert "tagged" in expect.error(kerberos_mfa.test_idn_011, sshd=sshd, evidence={})


def test_the_roles_exemption_stays_as_before(expect, fake_host) -> None:
    """kerberos_mfa's own Match block: IDN-006 passes (recorded, key only), IDN-011 fails
    (the audit shows it waived)."""
    exemptions = ('{"exemptions": [{"account": "m7auto", "authentication": "publickey", '
                  '"networks": ["10.89.0.0/24"]}]}')
    files = config("Match User m7auto Address 10.89.0.0/24\n  AuthenticationMethods publickey\n",
                   **{kerberos_mfa.EXEMPTIONS: exemptions})
    host = sshd_host(fake_host, files,
                     lambda f: f["user"] == "m7auto" and f["addr"].startswith("10.89.0."))
    sshd = view(host)
    expect.run(kerberos_mfa.test_idn_006, sshd=sshd, evidence={})
    message = expect.fail(kerberos_mfa.test_idn_011, sshd=sshd, evidence={})
    assert "m7auto from 10.89.0.1" in message and "bob" not in message


ROLE_STACK = MFA_AUTH
IDN_005 = {"services": ["sshd", "sudo"], "admin_groups": ["m7admins"],
           "oath_file": "/etc/users.oath"}


def _admins_host(fake_host, group: str, passwd: str, enrolled: str) -> Any:
    return fake_host({
        "stat -c": "root root 600\n",
        "awk": enrolled,
        "getent passwd": f"{passwd}@@M\n{group}",
        "getent group m7admins": group,
    })


@pytest.mark.parametrize("pam", [{"/etc/pam.d/sshd": ROLE_STACK, "/etc/pam.d/sudo": ROLE_STACK}])
def test_idn_005_counts_admins_whose_primary_group_is_the_admin_group(expect, fake_host,
                                                                      pam) -> None:
    group = "m7admins:x:1600:alice\n"
    passwd = ("alice:x:1001:100::/home/alice:/bin/bash\n"
              "dave:x:1005:1600::/home/dave:/bin/bash\n")
    evidence: dict[str, Any] = {}
    message = expect.fail(kerberos_mfa.test_idn_005, host=_admins_host(fake_host, group, passwd,
                                                                   "alice\n"),
                          pam_files=pam, params=IDN_005, evidence=evidence)
    assert "dave" in message and "alice" not in message
    assert evidence["administrators"] == ["alice", "dave"]
    expect.run(kerberos_mfa.test_idn_005,
               host=_admins_host(fake_host, group, passwd, "alice\ndave\n"),
               pam_files=pam, params=IDN_005, evidence={})


def test_idn_005_a_missing_admin_group_is_an_error(expect, fake_host) -> None:
    pam = {"/etc/pam.d/sshd": ROLE_STACK, "/etc/pam.d/sudo": ROLE_STACK}
    host = _admins_host(fake_host, "", "alice:x:1001:100::/home/alice:/bin/bash\n", "")
    assert "m7admins" in expect.error(kerberos_mfa.test_idn_005, host=host, pam_files=pam,
                                      params=IDN_005, evidence={})


def test_idn_007_settings_a_match_block_weakens_are_evaluated(expect, fake_host) -> None:
    def weak(f: dict[str, str]) -> bool:
        return f["user"] == "bob"

    host = sshd_host(fake_host, config("Match User bob\n  MaxAuthTries 20\n"), weak)
    sshd = view(host)
    for ctx in sshd.contexts:
        if ctx.user == "bob":
            ctx.settings.update(maxauthtries=["20"], hostbasedauthentication=["yes"])
    message = expect.fail(kerberos_mfa.test_idn_007, sshd=sshd, params={
        "max_auth_tries": 4, "max_login_grace_time": 60}, evidence={})
    assert "bob from" in message and "MaxAuthTries is 20" in message
    assert "hostbasedauthentication" in message


def test_idn_008_algorithms_a_match_block_allows_are_evaluated(expect, fake_host) -> None:
    host = sshd_host(fake_host, config("Match User bob\n  PubkeyAcceptedAlgorithms +ssh-rsa\n"),
                     lambda f: False)
    sshd = view(host)
    for ctx in [sshd.global_, *sshd.contexts]:
        ctx.settings.update(ciphers=["aes256-gcm@openssh.com"], macs=["hmac-sha2-512"],
                            kexalgorithms=["curve25519-sha256"],
                            hostkeyalgorithms=["ssh-ed25519"],
                            casignaturealgorithms=["ssh-ed25519"],
                            pubkeyacceptedalgorithms=["ssh-ed25519"])
        if ctx.user == "bob":
            ctx.settings["pubkeyacceptedalgorithms"] = ["ssh-ed25519,ssh-rsa"]
    allowed = {"allowed_ciphers": ["aes256-gcm@openssh.com"], "allowed_macs": ["hmac-sha2-512"],
               "allowed_kex_algorithms": ["curve25519-sha256"],
               "forbidden_signature_algorithms": ["ssh-rsa", "ssh-dss"]}
    message = expect.fail(kerberos_mfa.test_idn_008, sshd=sshd, params=allowed, evidence={})
    assert "bob from" in message and "ssh-rsa" in message


ADMIN_STACKS = {
    "user_unknown lets a missing code through": """\
auth [success=1 default=bad] pam_krb5.so
auth [default=die] pam_faillock.so authfail
auth [success=done user_unknown=ignore default=die] pam_oath.so usersfile=/etc/users.oath digits=6
auth required pam_permit.so
""",
    "a -auth line is skipped when its module is missing": """\
auth [success=1 default=bad] pam_krb5.so
auth requisite pam_deny.so
-auth [success=ok ignore=die default=die] pam_oath.so usersfile=/etc/users.oath digits=6
auth required pam_permit.so
""",
}


@pytest.mark.parametrize("case", sorted(ADMIN_STACKS))
def test_idn_005_every_return_code_and_a_missing_optional_module_are_walked(
        expect, fake_host, case) -> None:
    group = "m7admins:x:1600:alice\n"
    passwd = "alice:x:1001:100::/home/alice:/bin/bash\n"
    pam = {"/etc/pam.d/sshd": ADMIN_STACKS[case], "/etc/pam.d/sudo": ROLE_STACK}
    message = expect.fail(kerberos_mfa.test_idn_005,
                          host=_admins_host(fake_host, group, passwd, "alice\n"),
                          pam_files=pam, params=IDN_005, evidence={})
    assert "sshd lets an administrator in without the code" in message


def test_a_pam_control_the_check_does_not_know_is_an_error(expect) -> None:
    stack = ROLE_STACK.replace("[success=1 default=bad]     pam_krb5",
                               "[success=1 bogus=ok default=bad] pam_krb5")
    pam = {"/etc/pam.d/sshd": stack, "/etc/pam.d/sudo": ROLE_STACK}
    message = expect.error(kerberos_mfa.test_idn_004, pam_files=pam, params={
        "services": ["sshd", "sudo"], "first_factor_modules": ["pam_krb5"]}, evidence={})
    assert "bogus" in message


def _idn_008_view(**signature: str) -> kerberos_mfa.SshdView:
    settings = {"ciphers": ["aes256-gcm@openssh.com"], "macs": ["hmac-sha2-512"],
                "kexalgorithms": ["curve25519-sha256"]}
    settings.update({k: [v] for k, v in signature.items()})
    return kerberos_mfa.SshdView(global_=Context(None, None, settings))


IDN_008 = {"allowed_ciphers": ["aes256-gcm@openssh.com"], "allowed_macs": ["hmac-sha2-512"],
           "allowed_kex_algorithms": ["curve25519-sha256"],
           "forbidden_signature_algorithms": ["ssh-rsa", "ssh-dss"]}


def test_idn_008_reads_the_user_key_list_under_its_openssh_8_4_name(expect) -> None:
    """OpenSSH 8.4 (Debian 11) prints pubkeyacceptedkeytypes, with ssh-rsa in its default."""
    old = _idn_008_view(hostkeyalgorithms="ssh-ed25519", casignaturealgorithms="ssh-ed25519",
                        pubkeyacceptedkeytypes="ssh-ed25519,ssh-rsa-cert-v01@openssh.com,ssh-rsa")
    message = expect.fail(kerberos_mfa.test_idn_008, sshd=old, params=IDN_008, evidence={})
    assert "pubkeyacceptedalgorithms: ssh-rsa-cert-v01@openssh.com, ssh-rsa" in message
    hardened = _idn_008_view(hostkeyalgorithms="ssh-ed25519", casignaturealgorithms="ssh-ed25519",
                             pubkeyacceptedkeytypes="ssh-ed25519,rsa-sha2-512")
    expect.run(kerberos_mfa.test_idn_008, sshd=hardened, params=IDN_008, evidence={})


def test_idn_008_without_a_signature_list_is_an_error(expect) -> None:
    view = _idn_008_view(hostkeyalgorithms="ssh-ed25519", casignaturealgorithms="ssh-ed25519")
    assert "sshd -T names no pubkeyacceptedalgorithms" in expect.error(
        kerberos_mfa.test_idn_008, sshd=view, params=IDN_008, evidence={})
