"""sshd -T contexts, krb5.conf profiles, klist output and JAAS files as the IDN checks read them."""

from __future__ import annotations

import pytest

from m7guard.checks.support.krb5 import (
    boolean,
    duration,
    enctypes,
    parse_jaas,
    parse_klist,
    parse_profile,
)
from m7guard.checks.support.sshd import (
    Context,
    context_script,
    in_networks,
    match_targets,
    parse_contexts,
    parse_settings,
    representative,
    seconds,
    timeout_for,
)


def ctx(**settings: str) -> Context:
    return Context("u", "192.0.2.10", {k: [v] for k, v in settings.items()})


def test_second_factor_needs_keyboard_interactive_in_every_list() -> None:
    base = {"kbdinteractiveauthentication": "yes", "usepam": "yes"}
    both = "publickey,keyboard-interactive:pam gssapi-with-mic,keyboard-interactive:pam"
    assert ctx(authenticationmethods=both, **base).needs_second_factor()
    assert not ctx(authenticationmethods="any", **base).needs_second_factor()
    mixed = "publickey,keyboard-interactive:pam publickey"
    assert not ctx(authenticationmethods=mixed, **base).needs_second_factor()
    off = {**base, "usepam": "no"}
    assert not ctx(authenticationmethods="keyboard-interactive", **off).needs_second_factor()
    key = ctx(authenticationmethods="publickey", passwordauthentication="no")
    assert key.key_only() and key.methods() == [["publickey"]]


def test_sshd_settings_times_and_channel_timeouts() -> None:
    s = parse_settings("Port 22\nhostkey /a\nhostkey /b\nchanneltimeout session:shell=900\n")
    assert s["hostkey"] == ["/a", "/b"] and s["port"] == ["22"]
    assert seconds("900") == 900 and seconds("15m") == 900 and seconds("1h30m") == 5400
    assert seconds("abc") is None and seconds("") is None
    assert timeout_for("session:shell=900", "session:shell") == 900
    assert timeout_for("session:*=10m x11-connection=5", "session:shell") == 600
    assert timeout_for("session:command=60", "session:shell") is None
    assert timeout_for("none", "session:shell") is None
    assert timeout_for("session:shell=0", "session:shell") is None


def test_match_targets_and_representative_addresses() -> None:
    users, addrs = match_targets(
        "Match User root,!bob,svc* Address 10.1.3.0/24,fd31:1:3::/64\n"
        "  AuthenticationMethods publickey\n"
        "# Match User nobody\nmatch user ops address 192.168.1.*\n"
    )
    assert users == {"root", "ops"}
    assert addrs == {"10.1.3.0/24", "fd31:1:3::/64", "192.168.1.*"}
    assert representative("10.1.3.0/24") == "10.1.3.1"
    assert representative("10.0.2.2/32") == "10.0.2.2"
    assert representative("192.168.1.*") == "192.168.1.1"
    assert representative("fd31:1:3::/64") == "fd31:1:3::1"
    assert representative("host.example") is None
    assert in_networks("10.1.3.1", ["fd31::/16", "10.1.3.0/24"])
    assert not in_networks("10.1.4.1", ["10.1.3.0/24", "junk"])


def test_context_script_round_trip() -> None:
    script = context_script(["root"], ["192.0.2.10"], "@@m")
    assert "sshd -T -C user=root,host=192.0.2.10,addr=192.0.2.10" in script
    out = (
        "@@m global\nauthenticationmethods any\n"
        "@@m ctx root 192.0.2.10\npermitrootlogin no\n@@m end\n"
    )
    contexts = parse_contexts(out, "@@m")
    assert [c.label() for c in contexts] == ["global", "root from 192.0.2.10"]
    assert contexts[1].get("permitrootlogin") == "no"


KRB5 = """\
[libdefaults]
    default_realm = EXAMPLE.COM
    dns_lookup_kdc = false
    permitted_enctypes = aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96
    ticket_lifetime = 10h
[realms]
    EXAMPLE.COM = {
        kdc = kdc1.example.com
        kdc = kdc2.example.com:88
        admin_server = kdc1.example.com
        auth_to_local = {
            x = y
        }
    }
includedir /etc/krb5.conf.d/
"""


def test_krb5_profile_values_defaults_and_includes() -> None:
    prof = parse_profile(KRB5)
    assert prof.value("default_realm") == "EXAMPLE.COM"
    assert prof.realms["EXAMPLE.COM"]["kdc"] == ["kdc1.example.com", "kdc2.example.com:88"]
    assert "x" not in prof.realms["EXAMPLE.COM"]
    assert prof.value("rdns") == "true" and not prof.explicit("rdns")
    assert prof.includes == ["includedir /etc/krb5.conf.d/"]
    parse_profile("[libdefaults]\n rdns = false\n", prof)
    assert boolean(prof.value("rdns")) is False
    assert enctypes(prof.value("permitted_enctypes")) == [
        "aes256-cts-hmac-sha1-96",
        "aes128-cts-hmac-sha1-96",
    ]


@pytest.mark.parametrize(
    ("text", "secs"),
    [
        ("36000", 36000),
        ("10h", 36000),
        ("7d", 604800),
        ("1d2h30m", 95400),
        ("10:00", 36000),
        ("10:00:30", 36030),
        ("soon", None),
        ("", None),
    ],
)
def test_krb5_durations(text: str, secs: int | None) -> None:
    assert duration(text) == secs


def test_klist_with_and_without_timestamps() -> None:
    out = (
        "Keytab name: FILE:/etc/krb5.keytab\nKVNO Timestamp         Principal\n"
        "---- ----------------- ---------------------------------------------\n"
        "   2 11/24/26 03:02:11 host/node1@M7GUARD.LAB (aes256-cts-hmac-sha384-192) \n"
        "   1 HTTP/node1@M7GUARD.LAB (arcfour-hmac) \n"
    )
    entries = parse_klist(out)
    assert [(e.kvno, e.principal, e.enctype) for e in entries] == [
        ("2", "host/node1@M7GUARD.LAB", "aes256-cts-hmac-sha384-192"),
        ("1", "HTTP/node1@M7GUARD.LAB", "arcfour-hmac"),
    ]


def test_jaas_entries_with_comments_and_quotes() -> None:
    text = """/* header; with { braces } */
    jpamLogin {
      // the sudo service first
      net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="sudo" debug=true;
      net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="mapr-admin";
    };
    MAPR_SERVER_KERBEROS {
      com.sun.security.auth.module.Krb5LoginModule required
        keyTab="/opt/mapr/conf/mapr.keytab" principal="mapr/c1@R";
    };"""
    entries = parse_jaas(text)
    assert [m.options["serviceName"] for m in entries["jpamLogin"]] == ["sudo", "mapr-admin"]
    assert entries["jpamLogin"][0].flag == "sufficient"
    krb = entries["MAPR_SERVER_KERBEROS"][0]
    assert krb.options == {"keyTab": "/opt/mapr/conf/mapr.keytab", "principal": "mapr/c1@R"}
