"""The field_encryption role on the lab's container data nodes against a moto KMS server on
127.0.0.1, and the ENC-* checks both ways.

One module-scoped story, each step asserted by its own test:
  first run       creates the key (alias, rotation, least-privilege policy), writes the
                  node configuration, installs field-encrypt from a wheel built here
  second run      changed=0
  compliant       encrypted records (made with the node's own field-encrypt) and a clean
                  text file in the data directory: every ENC check passes on every node
  broken          KMS rotation off and a wildcard Allow statement; node1's config mode
                  0644; node2's config removed; node3's data directories hold a plaintext
                  Luhn-valid card number (a JSON Lines record and a text file):
                  ENC-001/002 fail on node1 and node3 (error on node2: no configuration
                  names the key), ENC-003 fails on node1 and node2, ENC-004 fails on node3
                  (masked evidence) and is an error on node2
  --check broken  reports changes and changes nothing (KMS and nodes as they were)
  repaired        a normal run restores KMS and the configuration; with the plaintext
                  files removed every check passes again
  columnar        on node1, with a wheelhouse of pyarrow and pandas for the node's Python
                  (tests/tools/wheelhouse/nodes, from scripts/test-tools.sh): the library
                  is installed with its executor extra (second run changed=0), the venv's
                  Python runs the code Spark executors run (field_encryption.arrow_fields)
                  and reads Parquet, and ENC-004 finds a card number in a Parquet file on
                  node1 where node3, without the wheels, reports it cannot read the file
                  (error, never pass)
Bad input (alias, region, empty field policy, relative data directory, wildcard policy)
fails before anything changes, on the nodes or in KMS.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from labkit import nodes_of_release, play_recap, wheelhouse
from motokit import AWS_ENV, moto_server

from m7guard.results import Results

pytestmark = [pytest.mark.lab]

NODES = ("node1", "node2", "node3")
CONFIG = "/etc/m7guard/field-encryption.yml"
USERS_DIR = "/srv/m7guard/data/users"
PAYMENTS_DIR = "/srv/m7guard/data/payments"
RULES = ("ENC-001", "ENC-002", "ENC-003", "ENC-004")
ACCOUNT = "123456789012"
LEAST_PRIVILEGE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "KeyAdministration", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "UseWithinTheAccount", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}},
    ],
}
WILDCARD_STATEMENT = {"Sid": "AnyoneMayDecrypt", "Effect": "Allow", "Principal": {"AWS": "*"},
                      "Action": "kms:Decrypt", "Resource": "*"}
PAN = "4539 1488 0343 6467"  # Luhn-valid test number
PAN_DIGITS = PAN.replace(" ", "")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


@dataclass
class Story:
    lab: Any
    kms: Any
    alias: str
    vars_file: Path
    work: Path
    recaps: dict[str, dict[str, tuple[int, int, int, int]]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    audits: dict[str, Results] = field(default_factory=dict)
    audit_text: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run_role(self, name: str, *extra: str, check: bool = True) -> str:
        proc = self.lab.playbook("playbooks/field_encryption.yml", "--limit", ",".join(NODES),
                                 "-e", f"@{self.vars_file}", *extra, check=check)
        text = proc.stdout + proc.stderr
        self.outputs[name] = text
        self.recaps[name] = {h: tuple(map(int, rest))
                             for h, *rest in RECAP.findall(proc.stdout)}
        return text

    def audit(self, name: str) -> Results:
        out = self.work / f"audit-{name}"
        proc = self.lab.m7guard("audit", "-i", str(self.lab.inventory), "--limit",
                                ",".join(NODES), "--profile", "encryption", "--out", str(out),
                                "--format", "json", check=False)
        assert proc.returncode in (0, 2), proc.stdout + proc.stderr
        self.audits[name] = Results.load(out / "results.json")
        self.audit_text[name] = "".join(
            p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()
        ) + proc.stdout + proc.stderr
        return self.audits[name]

    def state(self, name: str) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r["host"], r["rule"]): r for r in self.audits[name].results}

    def snapshot(self) -> dict[str, Any]:
        """KMS and node state that --check must leave alone."""
        meta = self.kms.describe_key(KeyId=self.alias)["KeyMetadata"]
        nodes = {}
        for node in NODES:
            proc = self.lab.ssh(node, f"stat -c '%U %G %a %s' {CONFIG} 2>/dev/null || echo absent;"
                                      f" sha256sum {CONFIG} 2>/dev/null || true")
            nodes[node] = proc.stdout
        return {
            "rotation": self.kms.get_key_rotation_status(KeyId=meta["KeyId"])[
                "KeyRotationEnabled"],
            "policy": self.kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")[
                "Policy"],
            "nodes": nodes,
        }


def _put(lab: Any, node: str, path: str, text: str) -> None:
    lab.ssh(node, f"printf %s {shlex.quote(text)} > {shlex.quote(path)}")


def _compliant_data(lab: Any, node: str) -> None:
    """Records encrypted by the node's own field-encrypt (a local development key), a
    payments CSV with the card number encrypted, and a text file without account data."""
    plain = "\n".join(json.dumps(r) for r in [
        {"_id": 1, "name": "Ada", "ssn": "078-05-1120", "credit_card": PAN,
         "personal_info": {"email": "ada@example.com", "phone": "+1 555 0100"}},
        {"_id": 2, "name": "Grace", "ssn": "219-09-9999", "credit_card": "4111111111111111",
         "personal_info": {"email": "grace@example.com"}},
    ]) + "\n"
    _put(lab, node, "/root/users-plain.jsonl", plain)
    _put(lab, node, "/root/payments-plain.csv", f"id,amount,card_number\n7,12.50,{PAN}\n")
    lab.ssh(node, " && ".join([
        "rm -f /root/dev-key.json",
        "field-encrypt keys local-new /root/dev-key.json",
        f"rm -rf {USERS_DIR}/* {PAYMENTS_DIR}/*",
        f"field-encrypt encrypt /root/users-plain.jsonl -o {USERS_DIR}/users.jsonl "
        "--local-key /root/dev-key.json --table users -f ssn -f credit_card -f personal_info",
        f"field-encrypt encrypt /root/payments-plain.csv -o {PAYMENTS_DIR}/payments.csv "
        "--local-key /root/dev-key.json --table payments --record-id-field id -f card_number",
        "rm -f /root/users-plain.jsonl /root/payments-plain.csv",
        f"printf 'daily export finished, 2 records\\n' > {USERS_DIR}/README.txt",
    ]))


@pytest.fixture(scope="module")
def story(lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    import boto3

    work = tmp_path_factory.mktemp("field-encryption-role")
    with pytest.MonkeyPatch.context() as mp, moto_server() as endpoint:
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setenv("AWS_ENDPOINT_URL", endpoint)  # the audit's KMS checks ask the moto server
        alias = f"alias/m7guard-it-{uuid.uuid4().hex[:10]}"
        vars_file = work / "vars.json"
        vars_file.write_text(json.dumps({
            "field_encryption_kms_endpoint_url": endpoint,
            "field_encryption_kms_key_alias": alias,
            "field_encryption_create_key": True,
            "field_encryption_kms_key_policy": LEAST_PRIVILEGE,
            # on Debian 11 (node2 of the release matrix) cryptography and boto3 are too old
            "field_encryption_dependency_wheelhouse": str(wheelhouse("deps-cp39")),
        }))
        kms = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)
        yield Story(lab=lab, kms=kms, alias=alias, vars_file=vars_file, work=work)


def _changed(story: Story, name: str) -> dict[str, int]:
    recap = story.recaps[name]
    assert set(recap) == set(NODES), story.outputs[name][-3000:]
    assert all(r[2] == 0 and r[3] == 0 for r in recap.values()), story.outputs[name][-3000:]
    return {h: r[1] for h, r in recap.items()}


def test_01_bad_input_fails_before_any_change(story: Story) -> None:
    open_policy = {"Version": "2012-10-17", "Statement": [WILDCARD_STATEMENT]}
    listing = f"ls -la {CONFIG} /usr/local/bin 2>&1"
    before = {n: story.lab.ssh(n, listing, check=False).stdout for n in NODES}
    cases = [
        (["-e", "field_encryption_aws_region=moon-base-1"], "field_encryption_aws_region"),
        (["-e", '{"field_encryption_tables": {}}'], "field_encryption_tables"),
        (["-e", "field_encryption_kms_key_alias=pii"], "field_encryption_kms_key_alias"),
        (["-e", '{"field_encryption_data_dirs": [{"path": "relative/dir"}]}'],
         "field_encryption_data_dirs"),
        (["-e", json.dumps({"field_encryption_kms_key_policy": open_policy})],
         "wildcard principal without a Condition"),
        (["-e", f"field_encryption_columnar_wheelhouse={story.work}"],
         "field_encryption_columnar_wheelhouse"),
        (["-e", f"field_encryption_dependency_wheelhouse={story.work}"],
         "field_encryption_dependency_wheelhouse"),
    ]
    for extra, expected in cases:
        name = f"bad {expected}"
        text = story.run_role(name, *extra, check=False)
        assert expected in text, text[-2000:]
        recap = story.recaps[name]
        assert recap, text[-2000:]
        assert all(changed == 0 for _, changed, _, _ in recap.values()), text[-2000:]
        assert any(failed > 0 for _, _, _, failed in recap.values()), text[-2000:]
    after = {n: story.lab.ssh(n, listing, check=False).stdout for n in NODES}
    assert after == before
    aliases = {a["AliasName"] for a in story.kms.list_aliases()["Aliases"]}
    assert story.alias not in aliases, "bad input created the KMS key"


def test_01b_only_a_node_whose_packages_are_too_old_needs_the_dependency_wheels(
        story: Story) -> None:
    """Without field_encryption_dependency_wheelhouse: on Debian 12 (node1) the library's
    dependencies come from the node's packages and nothing is copied; on Debian 11 (node2 of
    the release matrix, the tests' lab: python3-cryptography 3.3, python3-boto3 1.13) the
    role stops after the Debian packages, naming them and the variable, and the venv is not
    made. (KMS and the configuration are left to the first run.)"""
    without = ("-e", f"@{story.vars_file}", "-e", "field_encryption_dependency_wheelhouse=",
               "-e", "field_encryption_kms_manage=false", "--tags", "ENC-004")
    proc = story.lab.playbook("playbooks/field_encryption.yml", "--limit", "node1", *without)
    assert play_recap(proc.stdout)["node1"]["failed"] == 0, proc.stdout[-3000:]
    assert story.lab.ssh("node1", "test -e /opt/m7guard/venv/dependencies",
                         check=False).returncode == 1
    old = nodes_of_release("bullseye")
    print(f"\nDebian 11 nodes in this lab: {old or 'none (the release matrix has node2)'}")
    for node in old:
        proc = story.lab.playbook("playbooks/field_encryption.yml", "--limit", node, *without,
                                  check=False)
        text = " ".join((proc.stdout + proc.stderr).split())  # the callback folds messages
        assert play_recap(proc.stdout)[node]["failed"] == 1, text[-3000:]
        assert "field_encryption_dependency_wheelhouse" in text, text[-3000:]
        assert re.search(r"python3-cryptography 3\.3[.0-9]* \(cryptography>=38\)", text), text
        assert re.search(r"python3-boto3 1\.13[.0-9]* \(boto3>=1\.26\)", text), text[-3000:]
        assert story.lab.ssh(node, "test -e /opt/m7guard/venv", check=False).returncode == 1


def test_02_first_run_creates_key_config_and_installs_field_encrypt(story: Story) -> None:
    story.run_role("first")
    changed = _changed(story, "first")
    assert all(n > 0 for n in changed.values()), changed
    meta = story.kms.describe_key(KeyId=story.alias)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert story.kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
    policy = json.loads(story.kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")[
        "Policy"])
    assert policy == LEAST_PRIVILEGE
    for node in NODES:
        stat = story.lab.ssh(node, f"stat -c '%U %G %a' {CONFIG}").stdout.split()
        assert stat == ["root", "root", "640"], (node, stat)
        text = story.lab.ssh(node, f"cat {CONFIG}").stdout
        assert story.alias in text and "card_number" in text and USERS_DIR in text
        assert "field-encrypt" in story.lab.ssh(node, "field-encrypt --help").stdout
        assert story.lab.ssh(node, "test -d /opt/m7guard/venv/wheels && "
                                   "ls /opt/m7guard/venv/wheels").stdout.strip().endswith(".whl")


def test_03_second_run_changes_nothing(story: Story) -> None:
    story.run_role("second")
    assert _changed(story, "second") == dict.fromkeys(NODES, 0), story.outputs["second"][-3000:]


def test_04_every_check_passes_on_the_compliant_lab(story: Story) -> None:
    for node in NODES:
        _compliant_data(story.lab, node)
    story.audit("compliant")
    states = story.state("compliant")
    for node in NODES:
        for rule in RULES:
            result = states[(node, rule)]
            assert result["state"] == "pass", (node, rule, result["message"], result["evidence"])
    evidence = states[("node1", "ENC-004")]["evidence"]
    assert evidence["record_files"] == 2 and evidence["text_files"] == 1
    assert states[("node1", "ENC-001")]["evidence"]["rotation_enabled"] is True


def _break(story: Story) -> None:
    meta = story.kms.describe_key(KeyId=story.alias)["KeyMetadata"]
    story.kms.disable_key_rotation(KeyId=meta["KeyId"])
    wide = json.loads(json.dumps(LEAST_PRIVILEGE))
    wide["Statement"].append(WILDCARD_STATEMENT)
    story.kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=json.dumps(wide))
    story.lab.ssh("node1", f"chmod 0644 {CONFIG}")
    story.lab.ssh("node2", f"rm -f {CONFIG}")
    _put(story.lab, "node3", f"{USERS_DIR}/leak.jsonl",
         json.dumps({"_id": 9, "name": "Leak", "credit_card": PAN}) + "\n")
    _put(story.lab, "node3", f"{PAYMENTS_DIR}/notes.txt", f"refund to card {PAN} approved\n")


def test_05_each_check_fails_on_a_non_compliant_setup(story: Story) -> None:
    _break(story)
    story.audit("broken")
    states = story.state("broken")
    for node in NODES:
        if node == "node2":  # no configuration: the KMS key cannot even be named
            for rule in ("ENC-001", "ENC-002", "ENC-004"):
                assert states[(node, rule)]["state"] == "error", states[(node, rule)]
                assert "ENC-003" in states[(node, rule)]["message"]
            continue
        assert states[(node, "ENC-001")]["state"] == "fail"
        assert "rotation is off" in states[(node, "ENC-001")]["message"]
        assert states[(node, "ENC-002")]["state"] == "fail"
        assert "AnyoneMayDecrypt" in states[(node, "ENC-002")]["message"]
        assert "UseWithinTheAccount" not in states[(node, "ENC-002")]["message"]
    assert states[("node1", "ENC-003")]["state"] == "fail"
    assert "0644" in states[("node1", "ENC-003")]["message"]
    assert states[("node2", "ENC-003")]["state"] == "fail"
    assert "does not exist" in states[("node2", "ENC-003")]["message"]
    assert states[("node3", "ENC-003")]["state"] == "pass"
    assert states[("node1", "ENC-004")]["state"] == "pass"
    leak = states[("node3", "ENC-004")]
    assert leak["state"] == "fail", leak
    kinds = {(f["kind"], f["at"].split(" ")[0].split(":")[0]) for f in leak["evidence"]["findings"]}
    assert ("pan", f"{USERS_DIR}/leak.jsonl") in kinds
    assert ("unencrypted-field", f"{USERS_DIR}/leak.jsonl") in kinds
    assert ("pan", f"{PAYMENTS_DIR}/notes.txt") in kinds
    assert all(f["masked"] in ("", "**** **** **** 6467") for f in leak["evidence"]["findings"])
    assert PAN not in story.audit_text["broken"] and PAN_DIGITS not in story.audit_text["broken"]


def test_06_check_mode_reports_the_repairs_and_changes_nothing(story: Story) -> None:
    before = story.snapshot()
    story.run_role("check-broken", "--check", "--diff")
    changed = _changed(story, "check-broken")
    # node1: its config mode and the KMS task (run once, reported on node1); node2: its
    # missing config; node3 has nothing the role manages out of place (its data is not
    # the role's to change)
    assert changed["node1"] >= 2 and changed["node2"] >= 1 and changed["node3"] == 0, changed
    assert story.snapshot() == before
    assert before["rotation"] is False


def test_07_a_normal_run_repairs_and_every_check_passes_again(story: Story) -> None:
    story.run_role("repair")
    changed = _changed(story, "repair")
    assert changed["node1"] >= 2 and changed["node2"] >= 1 and changed["node3"] == 0, changed
    meta = story.kms.describe_key(KeyId=story.alias)["KeyMetadata"]
    assert story.kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
    story.lab.ssh("node3", f"rm -f {USERS_DIR}/leak.jsonl {PAYMENTS_DIR}/notes.txt")
    story.audit("repaired")
    states = story.state("repaired")
    for node in NODES:
        for rule in RULES:
            assert states[(node, rule)]["state"] == "pass", (node, rule, states[(node, rule)])


# --- columnar: the executor extra from a wheelhouse -----------------------------------------

EXECUTOR_ROUND_TRIP = """
import json, pyarrow as pa, pandas
from field_encryption import FieldEncryption
from field_encryption.arrow_fields import decrypt_batch, encrypt_batch
fe = FieldEncryption(key_provider="local", key_file="/root/dev-key.json")
batch = pa.record_batch({"id": ["1", "2"], "card": ["CARD", "4111111111111111"]})
sealed = encrypt_batch(fe, batch, ["card"], record_id_column="id")
opened = decrypt_batch(fe, sealed, ["card"], record_id_column="id")
print(json.dumps({"pyarrow": pa.__version__, "pandas": pandas.__version__,
                  "sealed": sealed.column("card").to_pylist(),
                  "opened": opened.column("card").to_pylist()}))
""".replace("CARD", PAN_DIGITS)
PARQUET_LEAK = f"{USERS_DIR}/cards.parquet"


def test_08_the_columnar_wheels_serve_parquet_and_spark_executors(story: Story) -> None:
    house = wheelhouse("nodes")  # CPython 3.11's wheels: node1 runs Debian 12
    extra = ("-e", f"field_encryption_columnar_wheelhouse={house}")
    runs = {}
    for name in ("columnar", "columnar again"):
        proc = story.lab.playbook("playbooks/field_encryption.yml", "--limit", "node1",
                                  "-e", f"@{story.vars_file}", *extra)
        runs[name] = play_recap(proc.stdout)["node1"]
    assert runs["columnar"]["changed"] > 0 and runs["columnar again"]["changed"] == 0, runs

    venv = "/opt/m7guard/venv/bin"
    out = story.lab.ssh("node1", f"{venv}/python -c {shlex.quote(EXECUTOR_ROUND_TRIP)}").stdout
    seen = json.loads(out)
    assert seen["opened"] == [PAN_DIGITS, "4111111111111111"], seen
    assert PAN_DIGITS not in json.dumps(seen["sealed"])
    listed = story.lab.ssh("node1", f"{venv}/pip list --disable-pip-version-check").stdout
    assert re.search(r"^field-encryption\s", listed, re.M), listed
    assert not re.search(r"^m7guard\s", listed, re.M), listed  # the library, not the framework

    # a card number in a Parquet file: read on node1, unreadable (error) on node3
    write = (f"import pyarrow as pa, pyarrow.parquet as pq; pq.write_table(pa.table("
             f"{{'_id': [1], 'credit_card': ['{PAN}']}}), '/root/cards.parquet')")
    story.lab.ssh("node1", f"{venv}/python -c {shlex.quote(write)}")
    parquet = story.lab.ssh("node1", "base64 -w0 /root/cards.parquet").stdout.strip()
    for node in ("node1", "node3"):
        story.lab.ssh(node, f"echo {parquet} | base64 -d > {PARQUET_LEAK}")
    try:
        states = {(r["host"], r["rule"]): r for r in story.audit("parquet").results}
    finally:
        for node in ("node1", "node3"):
            story.lab.ssh(node, f"rm -f {PARQUET_LEAK} /root/cards.parquet")
    found = states[("node1", "ENC-004")]
    assert found["state"] == "fail", found
    assert any(f["kind"] == "pan" and f["at"].startswith(PARQUET_LEAK)
               for f in found["evidence"]["findings"]), found["evidence"]
    unread = states[("node3", "ENC-004")]
    assert unread["state"] == "error", unread
    assert "field_encryption_columnar_wheelhouse" in unread["message"], unread
    assert PAN not in story.audit_text["parquet"] and PAN_DIGITS not in story.audit_text["parquet"]
