#!/usr/bin/python
"""Ansible module: a KMS key for field encryption, with its alias, rotation and key policy."""

from __future__ import annotations

import json
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: m7guard_kms_key
short_description: Ensure or validate the KMS key that protects encrypted record fields
version_added: "0.1.0"
description:
  - Looks the key up by its alias. With O(create=true) a missing key is created (symmetric,
    ENCRYPT_DECRYPT) together with its alias, automatic rotation is turned on and the key
    policy is set to O(policy) when one is given.
  - >-
    With O(create=false) nothing is changed: the module fails when the alias is missing, the
    key is not enabled, rotation is off or the policy differs from O(policy).
  - In both modes the module fails when the effective key policy allows a wildcard principal
    without a condition (or uses NotPrincipal with Allow), and refuses such an O(policy)
    before calling KMS, as well as an O(policy) that grants nobody kms:PutKeyPolicy (it
    would lock every administrator out of the key).
  - Uses boto3 only. Supports check mode.
options:
  alias:
    description: Alias of the key, C(alias/NAME). Names under C(alias/aws/) are AWS's own.
    type: str
    required: true
  key_id:
    description:
      - Key id or key ARN the alias must point to. When the alias is missing and O(create=true),
        the alias is created for this key instead of a new key.
    type: str
  create:
    description: Create the key and alias when missing and enforce rotation and policy.
    type: bool
    default: false
  description:
    description: Description of a key this module creates.
    type: str
    default: m7guard field encryption
  policy:
    description: The key policy to enforce (a JSON document); empty leaves the policy as it is.
    type: json
  region:
    description: AWS region.
    type: str
    required: true
  profile:
    description: Named AWS profile; empty uses the default credential chain.
    type: str
  endpoint_url:
    description: KMS endpoint, for a test server only (production leaves it unset).
    type: str
author:
  - m7guard
"""

EXAMPLES = r"""
- name: Ensure the field encryption key
  m7guard_kms_key:
    alias: alias/m7guard-pii
    region: eu-west-1
    create: true
"""

RETURN = r"""
key_id:
  description: Key id (empty when the key would be created in check mode).
  type: str
  returned: always
key_arn:
  description: Key ARN (empty when the key would be created in check mode).
  type: str
  returned: always
created:
  description: Whether the key was (or in check mode would be) created.
  type: bool
  returned: always
rotation_enabled:
  description: Automatic rotation state after the run.
  type: bool
  returned: always
actions:
  description: KMS changes made (or that check mode would make).
  type: list
  elements: str
  returned: always
wildcard_statements:
  description: Statements of the effective policy that grant a wildcard principal unconditionally.
  type: list
  elements: str
  returned: always
"""


ALIAS_RE = re.compile(r"^alias/(?!aws/)[A-Za-z0-9/_-]{1,250}$")
KEY_UUID_RE = re.compile(
    r"^(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:key/(.+)$")
REGION_RE = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$")
ENDPOINT_RE = re.compile(r"^https?://[^\s/?#]+(?:/[^\s]*)?$")


class KmsKeyError(Exception):
    """A problem the operator must fix; the message names it."""


def wildcard_statements(policy: dict[str, Any]) -> list[str]:
    """Labels (Sid or index) of Allow statements open to any principal without a condition."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    found = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        open_principal = "NotPrincipal" in statement or _any_wildcard(statement.get("Principal"))
        if open_principal and not statement.get("Condition"):
            found.append(str(statement.get("Sid") or f"statement {index}"))
    return found


def _any_wildcard(principal: Any) -> bool:
    if isinstance(principal, str):
        return "*" in principal
    if isinstance(principal, dict):
        return any(_any_wildcard(v) for v in principal.values())
    if isinstance(principal, list):
        return any(_any_wildcard(v) for v in principal)
    return False


def validate(params: dict[str, Any]) -> dict[str, Any] | None:
    """Check every input before KMS is called; return the parsed desired policy."""
    if not ALIAS_RE.match(params["alias"] or ""):
        raise KmsKeyError(
            f"alias {params['alias']!r} is not of the form alias/NAME (letters, digits, / _ -; "
            "not alias/aws/...)"
        )
    key_id = params.get("key_id") or ""
    arn = KEY_ARN_RE.match(key_id)
    if key_id and not (KEY_UUID_RE.match(key_id) or (arn and KEY_UUID_RE.match(arn.group(2)))):
        raise KmsKeyError(f"key_id {key_id!r} is neither a key id nor a key ARN")
    if not REGION_RE.match(params["region"] or ""):
        raise KmsKeyError(f"region {params['region']!r} is not an AWS region name (e.g. us-east-1)")
    if arn and arn.group(1) != params["region"]:
        raise KmsKeyError(f"key_id is in region {arn.group(1)}, not in region {params['region']}")
    endpoint = params.get("endpoint_url") or ""
    if endpoint and not ENDPOINT_RE.match(endpoint):
        raise KmsKeyError(f"endpoint_url {endpoint!r} is not an http(s) URL")
    raw = params.get("policy")
    if not raw:
        return None
    try:
        policy = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise KmsKeyError(f"policy is not valid JSON: {exc}") from None
    if not isinstance(policy, dict) or not policy.get("Statement"):
        raise KmsKeyError("policy must be a JSON object with a Statement list")
    open_to_all = wildcard_statements(policy)
    if open_to_all:
        raise KmsKeyError(
            "policy grants a wildcard principal without a Condition in "
            f"{', '.join(open_to_all)}: refusing to apply it"
        )
    if not grants_policy_admin(policy):
        raise KmsKeyError(
            "policy lets no principal change the key policy (kms:PutKeyPolicy or kms:*): "
            "applying it would lock every administrator out of the key"
        )
    return policy


def grants_policy_admin(policy: dict[str, Any]) -> bool:
    """Whether some Allow statement grants kms:PutKeyPolicy (directly or by wildcard)."""
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if str(action).lower() in ("*", "kms:*", "kms:putkeypolicy", "kms:put*"):
                return True
    return False


class KmsKey:
    """One alias on one KMS client; changes go through `_change` so check mode skips them."""

    def __init__(self, client: Any, params: dict[str, Any], check_mode: bool) -> None:
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.actions: list[str] = []

    def _change(self, action: str, call: Any = None, **kwargs: Any) -> Any:
        self.actions.append(action)
        if self.check_mode or call is None:
            return None
        return call(**kwargs)

    def _describe(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_key(KeyId=key)["KeyMetadata"])
        except self.client.exceptions.NotFoundException:
            return None

    def ensure(self, desired_policy: dict[str, Any] | None) -> dict[str, Any]:
        alias, create = self.params["alias"], self.params["create"]
        meta = self._describe(alias)
        wanted = self.params.get("key_id") or ""
        created = False
        if meta is None:
            if not create:
                raise KmsKeyError(
                    f"KMS alias {alias} does not exist in {self.params['region']} "
                    "(create it, or run with create enabled)"
                )
            if wanted:
                meta = self._describe(wanted)
                if meta is None:
                    raise KmsKeyError(f"key_id {wanted} does not exist")
            else:
                meta = self._create_key(desired_policy)
                created = True
            self._change(
                "create_alias",
                self.client.create_alias,
                AliasName=alias,
                TargetKeyId=meta.get("KeyId") or "pending",
            )
        self._require_usable(meta, wanted)
        key_id = meta.get("KeyId", "")
        rotation = self._ensure_rotation(key_id, created)
        policy = self._ensure_policy(key_id, created, desired_policy)
        return {
            "changed": bool(self.actions),
            "key_id": key_id,
            "key_arn": meta.get("Arn", ""),
            "alias": alias,
            "created": created,
            "rotation_enabled": rotation,
            "actions": self.actions,
            "wildcard_statements": wildcard_statements(policy) if policy else [],
        }

    def _create_key(self, desired_policy: dict[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "Description": self.params["description"],
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "Tags": [{"TagKey": "managed-by", "TagValue": "m7guard"}],
        }
        if desired_policy is not None:
            kwargs["Policy"] = json.dumps(desired_policy)
        result = self._change("create_key", self.client.create_key, **kwargs)
        if result is None:  # check mode: the key that would exist
            return {"KeyState": "Enabled", "KeyManager": "CUSTOMER",
                    "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
        return dict(result["KeyMetadata"])

    def _require_usable(self, meta: dict[str, Any], wanted: str) -> None:
        alias = self.params["alias"]
        if wanted and meta.get("KeyId") and wanted not in (meta.get("KeyId"), meta.get("Arn")):
            raise KmsKeyError(f"{alias} points to key {meta.get('KeyId')}, not to key_id {wanted}")
        if meta.get("KeyManager", "CUSTOMER") != "CUSTOMER":
            raise KmsKeyError(f"{alias} names an AWS managed key; use a customer managed key")
        if meta.get("KeyState") != "Enabled":
            raise KmsKeyError(f"the key of {alias} is {meta.get('KeyState')}, not Enabled")
        spec = meta.get("KeySpec", meta.get("CustomerMasterKeySpec"))
        usage = meta.get("KeyUsage") or "ENCRYPT_DECRYPT"  # KMS's default when created
        if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            raise KmsKeyError(
                f"the key of {alias} is {spec}/{usage}, "
                "not a symmetric ENCRYPT_DECRYPT key"
            )

    def _ensure_rotation(self, key_id: str, created: bool) -> bool:
        on = False if created else self._rotation_on(key_id)
        if on:
            return True
        if not self.params["create"]:
            raise KmsKeyError(f"automatic rotation is off for the key of {self.params['alias']}")
        self._change("enable_key_rotation", self.client.enable_key_rotation, KeyId=key_id)
        return True

    def _rotation_on(self, key_id: str) -> bool:
        return bool(self.client.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])

    def _ensure_policy(
        self, key_id: str, created: bool, desired: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if created and self.check_mode:
            current = desired
        else:
            raw = self.client.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
            current = json.loads(raw) if raw else {}
        if desired is not None and current != desired:
            if not self.params["create"]:
                raise KmsKeyError(f"the key policy of {self.params['alias']} differs from policy")
            self._change(
                "put_key_policy",
                self.client.put_key_policy,
                KeyId=key_id,
                PolicyName="default",
                Policy=json.dumps(desired),
            )
            current = desired
        open_to_all = wildcard_statements(current or {})
        if open_to_all:
            raise KmsKeyError(
                f"the key policy of {self.params['alias']} grants a wildcard principal "
                f"without a Condition in {', '.join(open_to_all)}; give policy to replace it"
            )
        return current


def kms_client(params: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        profile_name=params.get("profile") or None, region_name=params["region"]
    )
    return session.client(
        "kms",
        endpoint_url=params.get("endpoint_url") or None,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10),
    )


def run(params: dict[str, Any], check_mode: bool, client: Any = None) -> dict[str, Any]:
    """The module's work without AnsibleModule: raises KmsKeyError on anything to fix."""
    desired = validate(params)
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise KmsKeyError("boto3 is not installed for the controller's Python") from None
    try:
        kms = KmsKey(client or kms_client(params), params, check_mode)
        return kms.ensure(desired)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise KmsKeyError(f"KMS {err.get('Code', 'error')}: {err.get('Message', '')}") from None
    except BotoCoreError as exc:
        raise KmsKeyError(f"KMS unreachable or not authorised: {exc}") from None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "alias": {"type": "str", "required": True},
            "key_id": {"type": "str"},
            "create": {"type": "bool", "default": False},
            "description": {"type": "str", "default": "m7guard field encryption"},
            "policy": {"type": "json"},
            "region": {"type": "str", "required": True},
            "profile": {"type": "str"},
            "endpoint_url": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(dict(module.params), module.check_mode)
    except KmsKeyError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
