"""Class 1 of issue 13: missing or unreadable evidence is `error`, never `pass`, and
`notapplicable` needs a positive reason."""

from __future__ import annotations

import json
from typing import Any

import yaml

from m7guard.checks import field_encryption, kerberos_mfa, zero_trust_network
from m7guard.netpolicy.hoststate import NetState

NET_007 = {"always_allowed_tcp": [22], "ignored_udp_ports": [68, 546]}


def _netstate(ss: dict[str, Any]) -> NetState:
    return NetState.parse(json.dumps({
        "nft": "/usr/sbin/nft", "live": {"rc": 0, "out": '{"nftables": []}', "err": ""},
        "persisted_exists": False, "enabled": "enabled", "active": "active", "ss": ss,
        "declaration": None, "mfs_conf": None,
    }))


def test_net_007_without_ss_is_an_error(expect) -> None:
    state = _netstate({"rc": None, "out": "", "err": "[Errno 2] No such file or directory: 'ss'"})
    assert "ss" in expect.error(zero_trust_network.test_net_007, state, NET_007, {})


def test_net_007_when_ss_fails_is_an_error(expect) -> None:
    state = _netstate({"rc": 1, "out": "", "err": "Cannot open netlink socket"})
    assert "netlink" in expect.error(zero_trust_network.test_net_007, state, NET_007, {})


def test_net_007_on_output_ss_does_not_print_as_expected_is_an_error(expect) -> None:
    state = _netstate({"rc": 0, "out": "tcp LISTEN 0 128 0.0.0.0:ssh\n", "err": ""})
    assert "ss" in expect.error(zero_trust_network.test_net_007, state, NET_007, {})


def test_net_007_still_passes_and_fails_on_a_readable_listing(expect) -> None:
    quiet = _netstate({"rc": 0, "out": "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n", "err": ""})
    zero_trust_network.test_net_007(quiet, NET_007, {})
    nothing = _netstate({"rc": 0, "out": "", "err": ""})  # ss ran and lists no socket
    zero_trust_network.test_net_007(nothing, NET_007, {})
    loud = _netstate({"rc": 0, "out": "tcp LISTEN 0 128 0.0.0.0:8443 0.0.0.0:*\n", "err": ""})
    assert "tcp/8443" in expect.fail(zero_trust_network.test_net_007, loud, NET_007, {})


EMPTY_AUTH = {"/etc/pam.d/sshd": "account required pam_unix.so\n",
              "/etc/pam.d/sudo": "# nothing\nsession required pam_limits.so\n"}
PAM = {"services": ["sshd", "sudo"], "first_factor_modules": ["pam_krb5", "pam_sss"],
       "admin_groups": ["m7admins"], "oath_file": "/etc/users.oath", "max_deny": 10,
       "min_unlock_time": 1800}


def _pam_host(fake_host):
    return fake_host({
        "stat -c": "root root 600\n",
        "awk": "alice\n",
        "getent group m7admins": "m7admins:x:1001:alice\n",
        "getent passwd": "alice:x:1000:100::/home/alice:/bin/bash\n",
        "faillock.conf": "",
    })


def test_idn_004_on_an_empty_auth_stack_is_an_error(expect) -> None:
    message = expect.error(kerberos_mfa.test_idn_004, EMPTY_AUTH, PAM, {})
    assert "sshd" in message and "sudo" in message and "no auth" in message


def test_idn_005_on_an_empty_auth_stack_is_an_error(expect, fake_host) -> None:
    message = expect.error(kerberos_mfa.test_idn_005, _pam_host(fake_host), EMPTY_AUTH, PAM, {})
    assert "no auth" in message


def test_idn_010_on_an_empty_auth_stack_is_an_error(expect, fake_host) -> None:
    message = expect.error(kerberos_mfa.test_idn_010, _pam_host(fake_host), EMPTY_AUTH, PAM, {})
    assert "no auth" in message


def test_an_empty_stack_with_a_broken_service_still_fails(expect) -> None:
    files = {**EMPTY_AUTH, "/etc/pam.d/sudo": "auth sufficient pam_permit.so\n"}
    assert "sudo authenticates without" in expect.fail(kerberos_mfa.test_idn_004, files, PAM, {})


def _enc_host(fake_host, document: dict[str, Any]):
    return fake_host({f"cat -- {field_encryption.CONFIG}": yaml.safe_dump(document),
                      "command -v": "/opt/m7guard/venv/bin/field-encrypt\n"})


def test_enc_004_without_data_dirs_is_an_error_not_notapplicable(expect, fake_host) -> None:
    document = {"kms": {"key_alias": "alias/a", "region": "r"},
                "tables": {"users": {"fields": ["ssn"]}}, "data_dirs": []}
    evidence: dict[str, Any] = {}
    message = expect.error(field_encryption.test_enc_004, _enc_host(fake_host, document), evidence,
                           {"max_files": 10})
    assert "data_dirs" in message
    assert evidence["data_dirs"] == []
    del document["data_dirs"]
    assert "data_dirs" in expect.error(field_encryption.test_enc_004,
                                       _enc_host(fake_host, document),
                                       {}, {"max_files": 10})
