"""The Data Fabric rules no battery break covers (the battery's lab has no Data Fabric layout):
each passes on a hardened node's evidence and fails when one property of it is broken.

The evidence is what the checks read on a node: `stat` of the security files in
/opt/mapr/conf (IDN-012), mapr-clusters.conf (IDN-013), mapr.login.conf with the keytab's
principals and the PAM services of the Java login (IDN-014), the JSON of `maprcli config
load` and `maprcli audit info` (AUD-010) and env_override.sh against the node's memory and
cores (PERF-012), in the shapes HPE Ezmeral Data Fabric 7.x documents
(../shared/reference/mapr.md): a stand-in for the cluster, which cannot be installed here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from m7guard.catalog import load_catalog
from m7guard.checks import audit_logging, kerberos_mfa, performance

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "policies")
CONF = "/opt/mapr/conf"

HARDENED_STAT = {
    "maprserverticket": "mapr mapr 600",
    "cldb.key": "mapr mapr 600",
    "ssl_keystore": "mapr mapr 400",
    "ssl_truststore": "mapr mapr 444",
    "dare.master.key": "mapr mapr 600",
    "mapr.keytab": "mapr mapr 600",
}


def params(rule_id: str) -> dict[str, Any]:
    return CATALOG.parameters_for(CATALOG.rule(rule_id), CATALOG.profile("baseline"))


def _stat_host(fake_host, files: dict[str, str]):
    listing = "".join(f"{CONF}/{name} {line}\n" for name, line in files.items())
    return fake_host({"stat -c": listing})


def test_idn_012_passes_on_the_hardened_files(expect, fake_host) -> None:
    evidence: dict[str, Any] = {}
    expect.run(kerberos_mfa.test_idn_012, _stat_host(fake_host, HARDENED_STAT), evidence=evidence)
    assert evidence["files"]["cldb.key"] == "mapr:mapr 0600"


@pytest.mark.parametrize(("name", "line", "words"), [
    ("cldb.key", "mapr mapr 644", "cldb.key is mapr:mapr 0644"),
    ("dare.master.key", "root mapr 600", "dare.master.key is root:mapr"),
    ("ssl_truststore", "mapr mapr 644", "ssl_truststore is mapr:mapr 0644"),
    ("maprserverticket", None, "maprserverticket is missing"),
])
def test_idn_012_fails_for_one_file_broken(expect, fake_host, name: str, line: str | None,
                                           words: str) -> None:
    files = dict(HARDENED_STAT)
    if line is None:
        del files[name]
    else:
        files[name] = line
    message = expect.fail(kerberos_mfa.test_idn_012, _stat_host(fake_host, files), evidence={})
    assert words in message


def _files_host(fake_host, files: dict[str, str]):
    """Answers read_files' one round trip (its marker taken from the command)."""

    def answer(command: str) -> str:
        marker = re.search(r'(@@m7g-[0-9a-f]+) end', command)
        assert marker, command
        m = marker.group(1)
        return "".join(f"{m} {path}\n{text}\n" for path, text in files.items()) + f"{m} end\n"

    return fake_host({"@@m7g-": answer})


CLUSTERS = f"{CONF}/mapr-clusters.conf"


def test_idn_013_passes_on_a_secured_cluster(expect, fake_host) -> None:
    host = _files_host(fake_host, {CLUSTERS: "m7.lab secure=true cldb1:7222 cldb2:7222"})
    evidence: dict[str, Any] = {}
    expect.run(kerberos_mfa.test_idn_013, host, evidence=evidence)
    assert evidence["clusters"] == ["m7.lab secure=true cldb1:7222 cldb2:7222"]


@pytest.mark.parametrize(("text", "words"), [
    ("m7.lab secure=false cldb1:7222", "clusters not secured"),
    ("m7.lab cldb1:7222", "clusters not secured"),
    ("m7.lab secure=true cldb1:7222\ndr.lab secure=false cldb9:7222", "dr.lab"),
    ("# m7.lab secure=true cldb1:7222", "names no cluster"),
])
def test_idn_013_fails_when_a_cluster_is_not_secured(expect, fake_host, text: str,
                                                    words: str) -> None:
    message = expect.fail(kerberos_mfa.test_idn_013, _files_host(fake_host, {CLUSTERS: text}),
                          evidence={})
    assert words in message


def test_idn_013_without_the_file_fails(expect, fake_host) -> None:
    assert "does not exist" in expect.fail(kerberos_mfa.test_idn_013, _files_host(fake_host, {}),
                                           evidence={})


FEATURE = {"mfs.feature.audit.support": "1"}
AUDIT = {"cluster": {"enabled": "1"}, "data": {"enabled": "1", "retentionDays": "365"}}


def _maprcli_host(fake_host, feature: dict, info: dict):
    return fake_host({
        "config load -keys mfs.feature.audit.support": json.dumps({"data": [feature]}),
        "audit info": json.dumps({"data": [info]}),
    })


def test_aud_010_passes_with_every_audit_on(expect, fake_host) -> None:
    evidence: dict[str, Any] = {}
    expect.run(audit_logging.test_aud_010, _maprcli_host(fake_host, FEATURE, AUDIT),
               params=params("AUD-010"), evidence=evidence)
    assert evidence["audit"]["data"]["enabled"] == "1"


@pytest.mark.parametrize(("feature", "info", "words"), [
    ({"mfs.feature.audit.support": "0"}, AUDIT, "mfs.feature.audit.support is not 1"),
    (FEATURE, {**AUDIT, "cluster": {"enabled": "0"}}, "cluster administration auditing is off"),
    (FEATURE, {**AUDIT, "data": {"enabled": "0", "retentionDays": "365"}},
     "data access auditing is off"),
    (FEATURE, {**AUDIT, "data": {"enabled": "1", "retentionDays": "7"}},
     "data audit retention is 7 days"),
])
def test_aud_010_fails_for_one_audit_setting_off(expect, fake_host, feature: dict, info: dict,
                                                 words: str) -> None:
    message = expect.fail(audit_logging.test_aud_010, _maprcli_host(fake_host, feature, info),
                          params=params("AUD-010"), evidence={})
    assert words in message


def test_aud_010_when_maprcli_fails_is_an_error(expect, fake_host, out) -> None:
    host = fake_host({"config load": out(1, "", "ERROR (10009) - Couldn't connect to the CLDB"),
                      "audit info": json.dumps({"data": [AUDIT]})})
    assert "CLDB" in expect.error(audit_logging.test_aud_010, host, params=params("AUD-010"),
                                  evidence={})


LOGIN_CONF = f"{CONF}/mapr.login.conf"
HARDENED_JAAS = """
MAPR_SERVER_KERBEROS {
  com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true keyTab="/opt/mapr/conf/mapr.keytab" storeKey=true doNotPrompt=true
    principal="mapr/m7.lab@M7GUARD.LAB";
};
MAPR_WEBSERVER_KERBEROS {
  com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true keyTab="/opt/mapr/conf/mapr.keytab" storeKey=true doNotPrompt=true
    principal="HTTP/node1.m7.lab@M7GUARD.LAB";
};
jpamLogin {
  net.sf.jpam.jaas.JpamLoginModule Sufficient serviceName="mapr-admin";
};
"""
KEYTAB = ("Keytab name: FILE:/opt/mapr/conf/mapr.keytab\nKVNO Principal\n"
          "---- ------\n"
          "   2 mapr/m7.lab@M7GUARD.LAB (aes256-cts-hmac-sha1-96)\n"
          "   2 HTTP/node1.m7.lab@M7GUARD.LAB (aes256-cts-hmac-sha1-96)\n")
PAM = {"/etc/pam.d/mapr-admin": "auth required pam_krb5.so minimum_uid=1000\n",
       "/etc/pam.d/sshd": "auth required pam_krb5.so\nauth required pam_oath.so usersfile=x\n"}


def _login_host(fake_host, jaas: str, keytab: str = KEYTAB):
    files_host = _files_host(fake_host, {LOGIN_CONF: jaas})
    files_host.answers["klist -k -e"] = keytab
    return files_host


def test_idn_014_passes_on_the_hardened_login_configuration(expect, fake_host) -> None:
    evidence: dict[str, Any] = {}
    expect.run(kerberos_mfa.test_idn_014, _login_host(fake_host, HARDENED_JAAS), pam_files=PAM,
               evidence=evidence)
    assert evidence["jpamLogin services"] == ["mapr-admin"]


@pytest.mark.parametrize(("jaas", "keytab", "words"), [
    (HARDENED_JAAS.replace('keyTab="/opt/mapr/conf/mapr.keytab" storeKey=true doNotPrompt=true\n'
                           '    principal="mapr/', 'keyTab="/tmp/mapr.keytab" storeKey=true '
                           'doNotPrompt=true\n    principal="mapr/'),
     KEYTAB, "MAPR_SERVER_KERBEROS does not use /opt/mapr/conf/mapr.keytab"),
    (HARDENED_JAAS, KEYTAB.replace("   2 mapr/m7.lab@M7GUARD.LAB (aes256-cts-hmac-sha1-96)\n",
                                   ""), "is not in /opt/mapr/conf/mapr.keytab"),
    (HARDENED_JAAS.replace('serviceName="mapr-admin"', 'serviceName="sshd"'), KEYTAB,
     "asks for a one-time code"),
    (HARDENED_JAAS.replace('principal="HTTP/node1', 'principal="host/node1'), KEYTAB,
     "is not HTTP/"),
])
def test_idn_014_fails_for_one_login_setting_broken(expect, fake_host, jaas: str, keytab: str,
                                                    words: str) -> None:
    message = expect.fail(kerberos_mfa.test_idn_014, _login_host(fake_host, jaas, keytab),
                          pam_files=PAM, evidence={})
    assert words in message


ENV_OVERRIDE = ('export MAPR_MEMORY_OPTS="-Xms4g -Xmx4g"\nexport SPARK_DRIVER_MEMORY=2g\n'
                "export SPARK_EXECUTOR_MEMORY=8g\nexport SPARK_EXECUTOR_CORES=2\n")


def _env_host(fake_host, env: str, memory_kb: int = 32 * 1024 * 1024, cpus: int = 8):
    """Answers performance._read's one round trip: env_override.sh, meminfo, the cores."""
    from m7guard.checks.performance import MARK

    sections = {"env": env, "meminfo": f"MemTotal:       {memory_kb} kB\n", "cpus": f"{cpus}\n"}
    return fake_host({f"{MARK} env": "".join(f"{MARK} {name}\n{text}"
                                             for name, text in sections.items())})


def test_perf_012_passes_when_the_sizes_fit_the_node(expect, fake_host) -> None:
    evidence: dict[str, Any] = {}
    expect.run(performance.test_perf_012, _env_host(fake_host, ENV_OVERRIDE),
               params=params("PERF-012"), evidence=evidence)
    assert evidence["used_mib"] <= evidence["budget_mib"]


@pytest.mark.parametrize(("env", "words"), [
    (ENV_OVERRIDE.replace("SPARK_EXECUTOR_MEMORY=8g", "SPARK_EXECUTOR_MEMORY=40g"), "exceed"),
    (ENV_OVERRIDE.replace("-Xmx4g", "-Xmx30g"), "exceed"),
    (ENV_OVERRIDE.replace("SPARK_EXECUTOR_CORES=2", "SPARK_EXECUTOR_CORES=16"),
     "SPARK_EXECUTOR_CORES is 16"),
    (ENV_OVERRIDE.replace("export SPARK_DRIVER_MEMORY=2g\n", ""), "SPARK_DRIVER_MEMORY"),
])
def test_perf_012_fails_for_one_size_that_does_not_fit(expect, fake_host, env: str,
                                                       words: str) -> None:
    message = expect.fail(performance.test_perf_012, _env_host(fake_host, env),
                          params=params("PERF-012"), evidence={})
    assert words in message
