"""DF-007 and the data_fabric role's module data_fabric_ssl_passwords, on a temporary tree.

The tree is the stand-in's (tests/standin/hadoop: a node upgraded from release 6.2 that kept
its key and trust store passwords in clear text in ssl-server.xml, and a 7.x ssl-client.xml),
placed under a temporary /opt/mapr. The check's file listing runs in a real shell on that
tree; the module runs in-process (tests/modulekit.py). The check fails on the stand-in's
files, the module removes the password properties (and nothing else) once the credential
stores exist, and the check then passes; no password value reaches the evidence, the
module's result or its diff.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import modulekit
import pytest
from kernel_tuning_kit import load_module
from modulekit import FakeModule

from m7guard.checks import data_fabric as checks
from m7guard.checks.support.data_fabric import role_module

ROOT = Path(__file__).resolve().parents[3]
# the module writes with the collection's file helper, imported by its collection name
load_module("ansible_collections.m7guard.hardening.plugins.module_utils.m7guard_fileio",
            ROOT / "plugins" / "module_utils" / "m7guard_fileio.py")
STANDIN = ROOT / "tests" / "standin" / "hadoop"
SECRET = "standin-placeholder"


class Node:
    def __init__(self, where: Path, fake_host: Any, out: Any) -> None:
        self.conf = where / "opt/mapr/conf"
        self.hadoop = where / "opt/mapr/hadoop/hadoop-3.3.5/etc/hadoop"
        self.hadoop.mkdir(parents=True)
        self.conf.mkdir(parents=True)
        for name in ("ssl-server.xml", "ssl-client.xml"):
            shutil.copy(STANDIN / name, self.hadoop / name)
        (self.hadoop / "ssl-server.xml").chmod(0o640)
        self.patterns = [str(where / "opt/mapr/hadoop/hadoop-*/etc/hadoop/ssl-server.xml"),
                         str(where / "opt/mapr/hadoop/hadoop-*/etc/hadoop/ssl-client.xml")]
        self.stores = {"key_stores": [str(self.conf / "maprkeycreds.jceks")],
                       "trust_stores": [str(self.conf / "maprtrustcreds.jceks")]}

        def shell(command: str) -> Any:
            done = subprocess.run(command, shell=True, capture_output=True, text=True,
                                  check=False)
            return out(done.returncode, done.stdout, done.stderr)

        self.host = fake_host({"sh -c": shell})

    def stores_exist(self) -> None:
        for name in ("maprkeycreds.jceks", "maprtrustcreds.jceks"):
            (self.conf / name).write_text("stand-in credential store\n")

    def role(self, check_mode: bool = False) -> modulekit.Done:
        module = role_module("data_fabric_ssl_passwords")
        return modulekit.run(module, FakeModule({"files": self.patterns, **self.stores},
                                                check_mode))


@pytest.fixture
def node(tmp_path: Path, fake_host: Any, out: Any, monkeypatch: Any) -> Node:
    node = Node(tmp_path, fake_host, out)
    monkeypatch.setattr(checks, "setting", lambda _host, name: node.patterns
                        if name == "ssl_configuration" else None)
    return node


def test_clear_text_passwords_fail_then_the_role_removes_them(node: Node, expect: Any) -> None:
    evidence: dict[str, Any] = {}
    message = expect.fail(checks.test_df_007, node.host, evidence=evidence)
    server = str(node.hadoop / "ssl-server.xml")
    assert message.count("holds a clear-text password") == 3, message
    assert f"{server}: ssl.server.keystore.keypassword holds a clear-text password" in message
    assert evidence["clear_text_properties"][str(node.hadoop / "ssl-client.xml")] == []
    assert SECRET not in message + repr(evidence)

    before = (node.hadoop / "ssl-server.xml").read_text()
    refused = node.role()  # no credential store yet: nothing changes
    assert refused.failed and "nothing was changed" in refused.result["msg"]
    assert "no key or trust credential store" in refused.result["msg"]
    assert (node.hadoop / "ssl-server.xml").read_text() == before

    node.stores_exist()
    dry = node.role(check_mode=True)
    assert not dry.failed and dry.result["changed"]
    assert dry.result["removed"] == {server: ["ssl.server.keystore.keypassword",
                                              "ssl.server.keystore.password",
                                              "ssl.server.truststore.password"]}
    assert SECRET not in repr(dry.result)  # the diff masks the values
    assert (node.hadoop / "ssl-server.xml").read_text() == before

    done = node.role()
    assert not done.failed and done.result["changed"]
    after = (node.hadoop / "ssl-server.xml").read_text()
    assert SECRET not in after and "ssl.server.keystore.location" in after
    assert (node.hadoop / "ssl-server.xml").stat().st_mode & 0o777 == 0o640
    assert not node.role().result["changed"]  # read before write: nothing left to do
    expect.run(checks.test_df_007, node.host, evidence={})


def test_the_module_keeps_every_other_line(node: Node) -> None:
    """Only the three <property> elements go: the rest of the file is byte for byte."""
    node.stores_exist()
    before = (node.hadoop / "ssl-server.xml").read_text()
    node.role()
    after = (node.hadoop / "ssl-server.xml").read_text()
    expected = before
    for block in re.findall(r"<property>.*?</property>\n", before, re.S):
        if "password</name>" in block:
            expected = expected.replace(block, "")
    assert after == expected


@pytest.mark.parametrize(("text", "words"), [
    ("<configuration><property><name>x</name>", "is not well-formed XML"),
    ('<!DOCTYPE c [<!ENTITY e "x">]><configuration/>', "declares a DTD or entities"),
    ("<properties/>", "not <configuration>"),
])
def test_a_file_that_cannot_be_read_as_hadoop_configuration_is_an_error(
        node: Node, expect: Any, text: str, words: str) -> None:
    (node.hadoop / "ssl-client.xml").write_text(text)
    assert words in expect.error(checks.test_df_007, node.host, evidence={})
    node.stores_exist()
    refused = node.role()
    assert refused.failed and words in refused.result["msg"]


def test_no_ssl_file_or_a_pattern_that_is_no_path_is_an_error(node: Node, expect: Any,
                                                             monkeypatch: Any) -> None:
    shutil.rmtree(node.hadoop)
    assert "no SSL configuration file matches" in expect.error(
        checks.test_df_007, node.host, evidence={})
    monkeypatch.setattr(checks, "setting", lambda _host, _name: ["/opt/x; rm -rf /"])
    assert "is not a path pattern" in expect.error(checks.test_df_007, node.host, evidence={})


@pytest.mark.parametrize(("prop", "name"), [
    ("<property><name>ssl.server.keystore.password</name>"
     "<value><![CDATA[cdata-secret]]></value></property>", "ssl.server.keystore.password"),
    ("<property><value>value-first-secret</value><description>d</description>"
     "<name>ssl.client.truststore.password</name></property>", "ssl.client.truststore.password"),
    ('<property name="ssl.server.keystore.keypassword" value="attribute-secret"/>',
     "ssl.server.keystore.keypassword"),
    ("<!-- <property><name>ssl.server.truststore.password</name>"
     "<value>commented-secret</value></property> -->",
     "ssl.server.truststore.password (in a comment)"),
])
def test_every_form_hadoop_reads_is_found_removed_and_never_shown(
        node: Node, expect: Any, prop: str, name: str) -> None:
    """A value in CDATA, a value before its name, the attribute form and a property left in a
    comment: each fails, is removed, and its value reaches neither the evidence nor the
    module's result or diff."""
    client = node.hadoop / "ssl-client.xml"
    client.write_text(client.read_text().replace("</configuration>",
                                                 f"{prop}\n</configuration>"))
    secret = re.search(r"([a-z]+-secret)", prop).group(1)
    evidence: dict[str, Any] = {}
    message = expect.fail(checks.test_df_007, node.host, evidence=evidence)
    assert f"{client}: {name} holds a clear-text password" in message
    node.stores_exist()
    dry = node.role(check_mode=True)
    assert secret not in repr(dry.result) + message + repr(evidence)
    node.role()
    assert secret not in client.read_text() and "ssl.client.truststore.location" in (
        client.read_text())
    expect.run(checks.test_df_007, node.host, evidence={})
