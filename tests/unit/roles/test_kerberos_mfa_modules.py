"""kerberos_mfa's modules and filters: JAAS entries, pam_oath enrolments, the waiver fact."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "kerberos_mfa"
PLUGINS = ROLE.parents[1] / "plugins"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


jaas = _load("kerberos_mfa_jaas", PLUGINS / "modules/kerberos_mfa_jaas.py")
oath = _load("kerberos_mfa_oath_users", PLUGINS / "modules/kerberos_mfa_oath_users.py")
waivers = _load("kerberos_mfa_waiver_fact", PLUGINS / "modules/kerberos_mfa_waiver_fact.py")
filters = _load("kerberos_mfa_filters", PLUGINS / "filter/kerberos_mfa.py")

MAPR_LOGIN = """/* MapR JAAS */
hadoop_simple {
  org.apache.hadoop.security.login.GenericOSLoginModule required;
};

// PAM services in order
jpamLogin {
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="sudo" debug=true;
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="sshd" debug=true;
};
"""

WANTED = {
    "jpamLogin": jaas.wanted_modules(
        [
            {
                "class": "net.sf.jpam.jaas.JpamLoginModule",
                "flag": "required",
                "options": {"serviceName": "mapr-admin"},
            }
        ]
    ),
    "MAPR_SERVER_KERBEROS": jaas.wanted_modules(
        [
            {
                "class": "com.sun.security.auth.module.Krb5LoginModule",
                "flag": "required",
                "options": {
                    "useKeyTab": "true",
                    "keyTab": "/opt/mapr/conf/mapr.keytab",
                    "principal": "mapr/c1@R",
                },
            }
        ]
    ),
}


def test_jaas_replaces_listed_entries_keeps_the_rest_and_is_idempotent() -> None:
    new, updated = jaas.apply(MAPR_LOGIN, WANTED)
    assert updated == ["MAPR_SERVER_KERBEROS", "jpamLogin"]
    assert new.startswith("/* MapR JAAS */\nhadoop_simple {")
    assert "// PAM services in order" in new
    assert 'serviceName="sudo"' not in new
    entries = {e.name: e.modules for e in jaas.parse(new)}
    assert entries["jpamLogin"] == WANTED["jpamLogin"]
    assert entries["MAPR_SERVER_KERBEROS"] == WANTED["MAPR_SERVER_KERBEROS"]
    again, updated = jaas.apply(new, WANTED)
    assert (again, updated) == (new, [])


def test_jaas_ignores_formatting_and_option_order() -> None:
    text = "jpamLogin{net.sf.jpam.jaas.JpamLoginModule REQUIRED\n   serviceName=mapr-admin ;};\n"
    assert jaas.apply(text, {"jpamLogin": WANTED["jpamLogin"]}) == (text, [])


@pytest.mark.parametrize(
    "bad", ["jpamLogin {", "jpamLogin { a b c; };", "{ };", 'x { a b k="unterminated; };']
)
def test_jaas_rejects_what_it_cannot_parse(bad: str) -> None:
    with pytest.raises(jaas.JaasError):
        jaas.parse(bad)


def test_jaas_flags_are_checked() -> None:
    with pytest.raises(jaas.JaasError, match="flags"):
        jaas.wanted_modules([{"class": "x.Y", "flag": "mandatory"}])


SECRET = "3132333435363738393031323334353637383930"


def test_oath_keeps_pam_oath_state_while_the_secret_is_unchanged() -> None:
    first = oath.render("", {"alice": SECRET}, 6)
    assert f"HOTP/T30/6 alice - {SECRET}" in first
    # pam_oath rewrites the line with tabs, the last code and its time after a login
    used = first.replace(
        f"HOTP/T30/6 alice - {SECRET}",
        f"HOTP/T30/6\talice\t-\t{SECRET}\t0\t755224\t2026-11-24T03:10:33L",
    )
    assert oath.render(used, {"alice": SECRET}, 6) == used
    rotated = oath.render(used, {"alice": "ab" * 20}, 6)
    assert "755224" not in rotated and "ab" * 20 in rotated


def test_oath_drops_users_no_longer_listed_and_keeps_order() -> None:
    text = oath.render("", {"alice": SECRET, "bob": SECRET}, 6)
    lines = oath.render(text, {"bob": SECRET}, 6).splitlines()
    assert [ln.split()[1] for ln in lines if not ln.startswith("#")] == ["bob"]


def test_waiver_fact_replaces_only_its_own_rules() -> None:
    current = json.dumps(
        {
            "waivers": [
                {
                    "rule": "NET-004",
                    "justification": "x" * 12,
                    "expires": "2030-01-01",
                    "approver": "a",
                },
                {
                    "rule": "IDN-011",
                    "justification": "old" * 5,
                    "expires": "2020-01-01",
                    "approver": "b",
                },
            ]
        }
    )
    mine = [
        {
            "rule": "IDN-011",
            "justification": "new reason here",
            "expires": "2030-01-01",
            "approver": "c",
            "ticket": "",
        }
    ]
    text, warnings = waivers.merge(current, ["IDN-011"], mine)
    data = json.loads(text)["waivers"]
    assert warnings == []
    assert [w["rule"] for w in data] == ["NET-004", "IDN-011"]
    assert data[1] == {
        "rule": "IDN-011",
        "justification": "new reason here",
        "expires": "2030-01-01",
        "approver": "c",
    }
    assert waivers.merge(text, ["IDN-011"], mine)[0] == text
    removed, _ = waivers.merge(text, ["IDN-011"], [])
    assert [w["rule"] for w in json.loads(removed)["waivers"]] == ["NET-004"]


def test_waiver_fact_replaces_a_broken_file_with_a_warning() -> None:
    text, warnings = waivers.merge("{not json", ["IDN-011"], [])
    assert json.loads(text) == {"waivers": []}
    assert warnings


def test_network_filters() -> None:
    assert filters.invalid_networks(["10.0.0.0/24", "fd00::/64"]) == []
    assert filters.invalid_networks(["10.0.0.1/24", "nope"]) == ["10.0.0.1/24", "nope"]
    assert filters.invalid_networks("10.0.0.0/24") == ["10.0.0.0/24"]
    nets = ["10.233.3.0/24", "fd31:233:3::/64"]
    assert filters.address_in_networks("10.233.3.1", nets)
    assert filters.address_in_networks("fd31:233:3::1", nets)
    assert filters.address_in_networks("::ffff:10.233.3.1", nets)
    assert not filters.address_in_networks("10.233.2.1", nets)
    assert not filters.address_in_networks("", nets)
    assert not filters.address_in_networks("10.233.3.1", "10.233.3.0/24")
