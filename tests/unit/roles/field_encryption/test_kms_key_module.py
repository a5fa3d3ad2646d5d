"""m7guard_kms_key against a moto KMS server: create, validate, check mode, idempotence,
rotation and key policy, and inputs refused before KMS is called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
LIBRARY = ROOT / "plugins" / "modules"

ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
LEAST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "KeyAdmins", "Effect": "Allow", "Principal": {"AWS": ACCOUNT_ROOT},
         "Action": "kms:*", "Resource": "*"},
    ],
}
OPEN = {
    "Version": "2012-10-17",
    "Statement": [
        LEAST["Statement"][0],
        {"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Decrypt"], "Resource": "*"},
    ],
}


def _params(alias: str, endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"alias": alias, "key_id": None, "create": True, "description": "test",
            "policy": None, "region": "us-east-1", "profile": None, "endpoint_url": endpoint,
            **extra}


def _rotation(kms: Any, alias: str) -> bool:
    key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    return bool(kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])


def _aliases(kms: Any) -> set[str]:
    return {a["AliasName"] for a in kms.list_aliases()["Aliases"]}


def test_creates_key_alias_and_rotation_then_changes_nothing(kms_key_module, kms, alias,
                                                             moto_endpoint):
    first = kms_key_module.run(_params(alias, moto_endpoint), check_mode=False)
    assert first["changed"] and first["created"]
    assert first["actions"] == ["create_key", "create_alias", "enable_key_rotation"]
    meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    assert meta["KeyId"] == first["key_id"] and meta["Arn"] == first["key_arn"]
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert _rotation(kms, alias)
    second = kms_key_module.run(_params(alias, moto_endpoint), check_mode=False)
    assert not second["changed"] and second["actions"] == []
    assert second["key_id"] == first["key_id"] and second["rotation_enabled"]
    validated = kms_key_module.run(_params(alias, moto_endpoint, create=False), check_mode=False)
    assert not validated["changed"] and validated["key_arn"] == first["key_arn"]


def test_check_mode_reports_but_creates_nothing(kms_key_module, kms, alias, moto_endpoint):
    keys_before = len(kms.list_keys()["Keys"])
    result = kms_key_module.run(_params(alias, moto_endpoint), check_mode=True)
    assert result["changed"] and result["created"] and result["key_arn"] == ""
    assert result["actions"] == ["create_key", "create_alias", "enable_key_rotation"]
    assert alias not in _aliases(kms)
    assert len(kms.list_keys()["Keys"]) == keys_before


def test_validate_only_fails_on_a_missing_alias(kms_key_module, kms, alias, moto_endpoint):
    with pytest.raises(kms_key_module.KmsKeyError, match=f"{alias} does not exist"):
        kms_key_module.run(_params(alias, moto_endpoint, create=False), check_mode=False)
    assert alias not in _aliases(kms)


def _existing(kms: Any, alias: str, policy: dict | None = None) -> str:
    kwargs = {"Policy": json.dumps(policy)} if policy else {}
    key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def test_rotation_off_fails_validation_and_is_turned_on_when_creating(
    kms_key_module, kms, alias, moto_endpoint
):
    _existing(kms, alias)
    with pytest.raises(kms_key_module.KmsKeyError, match="automatic rotation is off"):
        kms_key_module.run(_params(alias, moto_endpoint, create=False), check_mode=False)
    checked = kms_key_module.run(_params(alias, moto_endpoint), check_mode=True)
    assert checked["changed"] and checked["actions"] == ["enable_key_rotation"]
    assert not _rotation(kms, alias)
    fixed = kms_key_module.run(_params(alias, moto_endpoint), check_mode=False)
    assert fixed["changed"] and not fixed["created"] and _rotation(kms, alias)


def test_wildcard_policy_fails_and_a_given_policy_replaces_it(
    kms_key_module, kms, alias, moto_endpoint
):
    key_id = _existing(kms, alias, OPEN)
    kms.enable_key_rotation(KeyId=key_id)
    with pytest.raises(kms_key_module.KmsKeyError, match=r"wildcard principal.*Everyone"):
        kms_key_module.run(_params(alias, moto_endpoint), check_mode=False)
    with pytest.raises(kms_key_module.KmsKeyError, match="differs from policy"):
        kms_key_module.run(_params(alias, moto_endpoint, create=False, policy=json.dumps(LEAST)),
                           check_mode=False)
    fixed = kms_key_module.run(_params(alias, moto_endpoint, policy=json.dumps(LEAST)),
                               check_mode=False)
    assert fixed["actions"] == ["put_key_policy"] and fixed["wildcard_statements"] == []
    stored = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert stored == LEAST
    again = kms_key_module.run(_params(alias, moto_endpoint, policy=json.dumps(LEAST)),
                               check_mode=False)
    assert not again["changed"]


def test_wildcard_with_a_condition_is_accepted(kms_key_module, alias, moto_endpoint):
    conditioned = json.loads(json.dumps(OPEN))
    conditioned["Statement"][1]["Condition"] = {
        "StringEquals": {"kms:CallerAccount": "123456789012"}
    }
    assert kms_key_module.wildcard_statements(conditioned) == []
    result = kms_key_module.run(_params(alias, moto_endpoint, policy=json.dumps(conditioned)),
                                check_mode=False)
    assert result["created"] and result["wildcard_statements"] == []


@pytest.mark.parametrize(
    ("statement", "flagged"),
    [
        ({"Effect": "Allow", "Principal": "*", "Action": "kms:*"}, True),
        ({"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:root", "*"]}}, True),
        ({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}}, True),
        ({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}}, True),
        ({"Effect": "Deny", "Principal": "*", "Action": "kms:*"}, False),
        ({"Effect": "Allow", "Principal": "*",
          "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
        ({"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}}, False),
    ],
)
def test_wildcard_statement_detection(kms_key_module, statement, flagged):
    assert bool(kms_key_module.wildcard_statements({"Statement": [statement]})) is flagged


class _NoCalls:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"KMS was called ({name}) although the input is invalid")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"alias": "m7guard-pii"}, "alias"),
        ({"alias": "alias/aws/ebs"}, "alias"),
        ({"alias": "alias/has space"}, "alias"),
        ({"key_id": "not-a-key"}, "key_id"),
        ({"key_id": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
         "region"),
        ({"region": "US-EAST-1"}, "region"),
        ({"region": "useast1"}, "region"),
        ({"endpoint_url": "ftp://127.0.0.1:1"}, "endpoint_url"),
        ({"policy": "{not json"}, "policy is not valid JSON"),
        ({"policy": json.dumps({"Version": "2012-10-17"})}, "Statement"),
        ({"policy": json.dumps(OPEN)}, "refusing to apply"),
        ({"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt",
                                               "Principal": {"AWS": ACCOUNT_ROOT}}]})},
         "lock every administrator out"),
    ],
)
def test_bad_input_is_refused_before_kms_is_called(kms_key_module, override, message):
    params = {**_params("alias/m7guard-ok", "http://127.0.0.1:1"), **override}
    with pytest.raises(kms_key_module.KmsKeyError, match=message):
        kms_key_module.run(params, check_mode=False, client=_NoCalls())


def test_alias_for_a_given_key_and_mismatch(kms_key_module, kms, alias, moto_endpoint):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    bound = kms_key_module.run(_params(alias, moto_endpoint, key_id=key_id), check_mode=False)
    assert bound["actions"] == ["create_alias", "enable_key_rotation"] and not bound["created"]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key_id
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms_key_module.KmsKeyError, match=f"not to key_id {other}"):
        kms_key_module.run(_params(alias, moto_endpoint, key_id=other), check_mode=False)


def test_disabled_key_fails(kms_key_module, kms, alias, moto_endpoint):
    key_id = _existing(kms, alias)
    kms.disable_key(KeyId=key_id)
    with pytest.raises(kms_key_module.KmsKeyError, match="Disabled, not Enabled"):
        kms_key_module.run(_params(alias, moto_endpoint), check_mode=False)


def test_unreachable_endpoint_is_a_clear_failure(kms_key_module, alias):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(kms_key_module.KmsKeyError, match="unreachable"):
        kms_key_module.run(_params(alias, f"http://127.0.0.1:{port}"), check_mode=False)


def _ansible(alias: str, endpoint: str, *extra: str) -> dict[str, Any]:
    """The module run the way a playbook runs it: ansible's module loader, argument spec,
    check mode flag and JSON result."""
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json", "ANSIBLE_LIBRARY": str(LIBRARY),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,",
         "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-m", "m7guard_kms_key",
         "-a", json.dumps({"alias": alias, "region": "us-east-1", "create": True,
                           "endpoint_url": endpoint}), *extra],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )
    head, sep, body = proc.stdout.partition(" => ")
    assert sep and head.startswith("localhost | "), proc.stdout + proc.stderr
    return dict(json.loads(body))


def test_through_ansible_check_mode_then_create_then_unchanged(kms, alias, moto_endpoint):
    checked = _ansible(alias, moto_endpoint, "--check")
    assert checked["changed"] is True and not checked.get("failed")
    assert alias not in _aliases(kms)
    created = _ansible(alias, moto_endpoint)
    assert created["changed"] is True and created["created"] is True
    assert _rotation(kms, alias)
    again = _ansible(alias, moto_endpoint)
    assert again["changed"] is False and again["key_arn"] == created["key_arn"]
