"""The DF-* cluster checks and the data_fabric role's module, against the Data Fabric stand-in.

The checks' `maprcli` calls are answered by the stand-in itself (tests/standin/maprcli.py, run
here with its state in a temporary directory): the JSON shapes the checks parse are the
stand-in's, which follow the Data Fabric 7.x documentation it cites. Each rule fails on the
fresh stand-in or on one property broken in its state, passes once the role module's commands
are applied (the same commands the role issues on a lab node, tests/integration/
test_data_fabric.py), and is `error` on an error reply or a field it cannot read.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from m7guard.checks import data_fabric as checks
from m7guard.checks.support.data_fabric import role_module

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "standin" / "maprcli.py"
DEFAULTS = {"regulated_volumes": None, "read_ace": "g:pci-readers | u:mapr",
            "write_ace": "g:pci-writers | u:mapr", "replace_aces": False,
            "audit_operations": ["read", "write", "create", "delete"],
            "cluster_admins": ["u:mapr"], "acting_principal": "u:mapr",
            "security_policies": ["pci-cardholder"]}
CHECKS = {"DF-001": checks.test_df_001, "DF-002": checks.test_df_002,
          "DF-003": checks.test_df_003, "DF-004": checks.test_df_004,
          "DF-005": checks.test_df_005, "DF-006": checks.test_df_006}


class Cluster:
    """The stand-in with its state in `where`, and a fake host whose maprcli is it."""

    def __init__(self, where: Path, fake_host: Any, out: Any) -> None:
        self.where, self.out = where, out
        self.host = fake_host({"/opt/mapr/bin/maprcli": self._answer})

    def maprcli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(STANDIN), *args], capture_output=True,
                              text=True, env={"DATAFABRIC_STANDIN_DIR": str(self.where)},
                              check=False)

    def _answer(self, command: str) -> Any:
        argv = shlex.split(command)
        done = self.maprcli(*argv[1:])
        return self.out(done.returncode, done.stdout, done.stderr)

    @property
    def state(self) -> dict[str, Any]:
        path = self.where / "state.json"
        if not path.exists():
            self.maprcli("volume", "list", "-json")  # writes nothing: take the initial one
            self.maprcli("audit", "cluster", "-enabled", "false")
        return json.loads(path.read_text())

    def change(self, edit: Any) -> None:
        state = self.state
        edit(state)
        (self.where / "state.json").write_text(json.dumps(state))

    def remediate(self, **params: Any) -> list[list[str]]:
        """What the role's module does: read, plan, issue the commands; returns them."""
        module = role_module()
        read = {name: module.reply_data(p.returncode, p.stdout, p.stderr, name)
                for name, p in (("dashboard", self.maprcli("dashboard", "info", "-json")),
                                ("volumes", self.maprcli("volume", "list", "-json")),
                                ("acl", self.maprcli("acl", "show", "-type", "cluster",
                                                     "-json")),
                                ("policies", self.maprcli("security", "policy", "list",
                                                          "-json")))}
        assert not module.cluster_refusals(read["dashboard"])
        commands, refusals, _, _ = module.plan(read["volumes"], read["acl"],
                                               {**DEFAULTS, **params}, read["policies"])
        assert not refusals, refusals
        for command in commands:
            done = self.maprcli(*command, "-json")
            assert done.returncode == 0, done.stdout + done.stderr
        return commands


@pytest.fixture
def cluster(tmp_path: Path, fake_host: Any, out: Any) -> Cluster:
    return Cluster(tmp_path, fake_host, out)


def test_the_fresh_stand_in_fails_every_rule_but_df_001(cluster: Cluster, expect: Any) -> None:
    expect.run(checks.test_df_001, cluster.host, evidence={})
    assert "volume cards: wiresecurityenabled is off" in expect.fail(
        checks.test_df_002, cluster.host, evidence={})
    assert "volume patients: readAce 'p' grants everyone (p)" in expect.fail(
        checks.test_df_003, cluster.host, evidence={})
    assert "volume cards is not audited" in expect.fail(
        checks.test_df_004, cluster.host, evidence={})
    assert expect.fail(checks.test_df_005, cluster.host, evidence={}) == (
        "u:etl holds fc without being a declared administrator")
    message = expect.fail(checks.test_df_006, cluster.host, evidence={})
    assert "security policy pci-cardholder is Disarmed" in message
    assert "volume cards is in the permissive mode PolicyAceAuditAndDataAce" in message


def test_every_rule_passes_after_the_roles_commands(cluster: Cluster, expect: Any) -> None:
    commands = cluster.remediate()
    assert [c[:2] for c in commands] == [["volume", "modify"], ["volume", "audit"],
                                         ["volume", "modify"], ["volume", "audit"],
                                         ["security", "policy"], ["acl", "set"]]
    assert commands[0][-2:] == ["-enforcementmode", "PolicyAceAndDataAce"]  # cards
    for check in CHECKS.values():
        expect.run(check, cluster.host, evidence={})
    assert cluster.remediate() == []  # read before write: nothing left to do
    assert cluster.state["volumes"]["mapr.var"]["volumeAces"]["readAce"] == "p"  # system: left
    acl = {e["Principal"]: e["Allowed actions"] for e in cluster.state["acl"]}
    assert acl["User etl"] == ["login", "cv"]  # loses fc, keeps the rest


def _set(volume: str, key: str, value: Any):
    def edit(state: dict[str, Any]) -> None:
        target = state["volumes"][volume]
        if key in ("readAce", "writeAce"):
            target = target["volumeAces"]
        if value is None:
            del target[key]
        else:
            target[key] = value
    return edit


BROKEN = [
    ("DF-001", lambda s: s["cluster"].update(secure=False), "the cluster is not secure"),
    ("DF-001", lambda s: s["cluster"].update(dare=False), "not encrypting data at rest"),
    ("DF-002", _set("cards", "dare", 0), "volume cards: dare is off"),
    ("DF-002", _set("patients", "wiresecurityenabled", "0"),
     "volume patients: wiresecurityenabled is off"),
    ("DF-003", _set("cards", "readAce", "g:pci-readers | p"), "grants everyone (p)"),
    ("DF-003", _set("cards", "writeAce", "(u:a & g:b) | (p)"),
     "writeAce '(u:a & g:b) | (p)' grants everyone"),
    ("DF-004", _set("patients", "audited", 0), "volume patients is not audited"),
    ("DF-004", _set("cards", "enableddataauditoperations", "getattr,write,create,delete"),
     "volume cards does not audit read"),
    ("DF-005", lambda s: s["acl"].append({"Principal": "Group ops", "Allowed actions": "[a]"}),
     "g:ops holds a without being a declared administrator"),
    ("DF-006", lambda s: s["policies"][0].update(accesscontrol="Disarmed"),
     "security policy pci-cardholder is Disarmed: its ACEs are not enforced"),
    ("DF-006", lambda s: s["policies"].clear(), "the cluster has no security policy"),
    ("DF-006", _set("patients", "enforcementmode", "PolicyAceAuditAndDataAce"),
     "volume patients is in the permissive mode"),
    ("DF-006", _set("cards", "enforcementmode", "DataAceOnly"),
     "volume cards is in enforcement mode DataAceOnly, not PolicyAceAndDataAce"),
]


@pytest.mark.parametrize(("rule", "edit", "words"), BROKEN)
def test_one_property_broken_fails_its_rule(cluster: Cluster, expect: Any, rule: str,
                                            edit: Any, words: str) -> None:
    cluster.remediate()
    expect.run(CHECKS[rule], cluster.host, evidence={})
    cluster.change(edit)
    assert words in expect.fail(CHECKS[rule], cluster.host, evidence={})


@pytest.mark.parametrize("ace", ["!p | u:mapr", "u:a & p", "(p & g:pci) | u:mapr"])
def test_an_ace_that_names_p_but_grants_only_named_principals_passes(
        cluster: Cluster, expect: Any, ace: str) -> None:
    cluster.remediate()
    cluster.change(_set("cards", "readAce", ace))
    expect.run(checks.test_df_003, cluster.host, evidence={})


UNREADABLE = [
    ("DF-001", lambda s: s["errors"].update({"dashboard info": "Couldn't connect to the CLDB"}),
     "maprcli dashboard info: maprcli error: Couldn't connect to the CLDB"),
    ("DF-001", lambda s: s["cluster"].update(dare="unknown"), "no usable 'dare'"),
    ("DF-002", lambda s: s["errors"].update({"volume list": "Couldn't connect to the CLDB"}),
     "maprcli volume list: maprcli error"),
    ("DF-002", _set("cards", "wiresecurityenabled", None), "no usable 'wiresecurityenabled'"),
    ("DF-003", _set("cards", "readAce", "u:a || p"), "cannot be parsed"),
    ("DF-003", lambda s: s["errors"].update({"volume list": "Unable to get ticket"}),
     "Unable to get ticket"),
    ("DF-004", _set("cards", "enableddataauditoperations", None),
     "no enableddataauditoperations"),
    ("DF-005", lambda s: s["errors"].update({"acl show": "No permission"}), "No permission"),
    ("DF-005", lambda s: s["acl"].append({"Principal": "Someone odd", "Allowed actions": []}),
     "principal of unknown form"),
    ("DF-006", lambda s: s["errors"].update({"security policy list": "No permission"}),
     "maprcli security policy list: maprcli error: No permission"),
    ("DF-006", _set("cards", "enforcementmode", None), "no usable enforcementmode"),
    ("DF-006", lambda s: s["policies"][0].update(accesscontrol=1), "no usable accesscontrol"),
]


@pytest.mark.parametrize(("rule", "edit", "words"), UNREADABLE)
def test_an_error_reply_or_an_unreadable_field_is_an_error(cluster: Cluster, expect: Any,
                                                           rule: str, edit: Any,
                                                           words: str) -> None:
    cluster.remediate()
    cluster.change(edit)
    assert words in expect.error(CHECKS[rule], cluster.host, evidence={})


def test_output_that_is_not_the_documented_envelope_is_an_error(fake_host: Any, out: Any,
                                                               expect: Any) -> None:
    host = fake_host({"maprcli": out(0, "Volume list follows\ncards\n", "")})
    assert "not a maprcli -json reply" in expect.error(checks.test_df_002, host, evidence={})
    host = fake_host({"maprcli": out(1, "", "ERROR (10009) - Connection refused")})
    assert "Connection refused" in expect.error(checks.test_df_001, host, evidence={})


# --- the module's refusals: nothing changes ----------------------------------------------


def _plan(cluster: Cluster, **params: Any) -> tuple[list[list[str]], list[str]]:
    module = role_module()
    volumes = module.reply_data(0, cluster.maprcli("volume", "list", "-json").stdout, "", "v")
    entries = module.reply_data(0, cluster.maprcli("acl", "show", "-type", "cluster",
                                                   "-json").stdout, "", "a")
    policies = module.reply_data(0, cluster.maprcli("security", "policy", "list",
                                                    "-json").stdout, "", "p")
    commands, refusals, _, _ = module.plan(volumes, entries, {**DEFAULTS, **params}, policies)
    return commands, refusals


def test_the_module_refuses_what_it_must_not_do(cluster: Cluster) -> None:
    cluster.change(_set("cards", "dare", 0))
    _, refusals = _plan(cluster, read_ace="")
    assert any("volume cards has no encryption at rest" in r for r in refusals)
    assert any("data_fabric_read_ace is not set" in r for r in refusals)
    _, refusals = _plan(cluster, cluster_admins=["u:etl"])
    assert any("leaves out u:mapr" in r for r in refusals)
    _, refusals = _plan(cluster, read_ace="p | u:mapr")
    assert any("data_fabric_read_ace 'p | u:mapr' is not an access expression" in r
               for r in refusals)
    _, refusals = _plan(cluster, security_policies=["pci-cardholder", "phi"])
    assert any("security policy phi of data_fabric_security_policies does not exist" in r
               for r in refusals)
    _, refusals = _plan(cluster, security_policies=None)  # unnamed: never armed by the role
    assert any("security policy pci-cardholder is Disarmed (DF-006): name the policies" in r
               for r in refusals)
    cluster.change(lambda s: s["policies"].clear())
    _, refusals = _plan(cluster, security_policies=None)
    assert any("the cluster has no security policy" in r for r in refusals)
    module = role_module()
    assert module.cluster_refusals([{"cluster": {"secure": False, "dare": True}}])


def test_the_module_never_widens_a_narrowed_ace(cluster: Cluster) -> None:
    cluster.change(_set("cards", "readAce", "u:auditor"))
    commands, _ = _plan(cluster)
    cards = next(c for c in commands if c[:4] == ["volume", "modify", "-name", "cards"])
    assert "-readAce" not in cards and "-writeAce" in cards
    commands, _ = _plan(cluster, replace_aces=True)
    cards = next(c for c in commands if c[:4] == ["volume", "modify", "-name", "cards"])
    assert cards[cards.index("-readAce") + 1] == DEFAULTS["read_ace"]


def test_regulated_volumes_follow_the_patterns() -> None:
    module = role_module()
    volumes = [{"volumename": n} for n in ("mapr.var", "mapr.cluster.root", "cards", "logs")]
    names = lambda patterns: [v["volumename"] for v in module.regulated(volumes, patterns)]  # noqa: E731
    assert names(None) == ["cards", "logs"]
    assert names(["*"]) == ["cards", "logs"]
    assert names(["card*", "mapr.var"]) == ["cards", "mapr.var"]
    assert names("cards, logs") == ["cards", "logs"]  # a string is a list, as Ansible reads it
    assert names([]) == []
    with pytest.raises(module.DataFabricError, match="must be a list of volume name patterns"):
        names({"cards": True})


@pytest.mark.parametrize("patterns", [["card"], "nothing*", []])
def test_no_regulated_volume_is_an_error_not_a_pass(fake_host: Any, out: Any, expect: Any,
                                                    tmp_path: Path, monkeypatch: Any,
                                                    patterns: Any) -> None:
    cluster = Cluster(tmp_path, fake_host, out)
    monkeypatch.setattr(checks, "setting", lambda _host, name: patterns
                        if name == "regulated_volumes" else DEFAULTS[name])
    for check in (checks.test_df_002, checks.test_df_003, checks.test_df_004):
        assert "no volume of the cluster is regulated" in expect.error(
            check, cluster.host, evidence={})


def test_the_checks_read_the_roles_variables_from_the_inventory(cluster: Cluster,
                                                               expect: Any) -> None:
    """data_fabric_maprcli and data_fabric_regulated_volumes of the host's inventory, as the
    role reads them (here: maprcli elsewhere, and only the volume cards regulated)."""
    from types import SimpleNamespace

    variables = {"data_fabric_maprcli": "/usr/local/bin/maprcli",
                 "data_fabric_regulated_volumes": ["cards"]}
    host = cluster.host
    host.answers = {"/usr/local/bin/maprcli": cluster._answer}
    host.backend = SimpleNamespace(NAME="ansible", get_variables=lambda: variables)
    evidence: dict[str, Any] = {}
    message = expect.fail(checks.test_df_002, host, evidence=evidence)
    assert message == "volume cards: wiresecurityenabled is off"  # patients is not regulated
    assert evidence["regulated_volumes"]["volumes"] == ["cards"]
    assert all(c.startswith("/usr/local/bin/maprcli ") for c in host.commands)


def test_security_policies_required_by_name_or_none(cluster: Cluster, expect: Any,
                                                    monkeypatch: Any) -> None:
    """data_fabric_security_policies names the policies required; [] requires none, which
    the evidence says; a named policy that does not exist fails."""
    cluster.remediate()
    cluster.change(lambda s: s["policies"].clear())
    names: list[str] = []
    monkeypatch.setattr(checks, "setting", lambda _host, name: names
                        if name == "security_policies" else DEFAULTS[name])
    evidence: dict[str, Any] = {}
    expect.run(checks.test_df_006, cluster.host, evidence=evidence)
    assert "no security policy is required" in evidence["security_policies"]["note"]
    names.append("phi")
    assert "security policy phi does not exist" in expect.fail(
        checks.test_df_006, cluster.host, evidence={})
