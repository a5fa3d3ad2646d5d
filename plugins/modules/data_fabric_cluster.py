#!/usr/bin/python
"""Bring a Data Fabric cluster's regulated volumes and cluster ACL to the declared state."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: data_fabric_cluster
short_description: Protect a Data Fabric cluster's regulated volumes and its administrators
version_added: "0.1.0"
description:
  - Reads the cluster through C(maprcli ... -json) (dashboard info, volume list, acl show
    -type cluster) and brings every regulated volume to wire security on, read and write
    ACEs that grant nothing to everyone (C(p)) and data auditing of the declared operations,
    and the enforcement mode that enforces both security policy and data ACEs
    (C(PolicyAceAndDataAce)); the cluster's security policies to armed (C(security policy
    list)); and the cluster ACL to C(fc) and C(a) held by the declared administrators alone.
  - Reads before it writes, so a second run issues no command; in check mode it issues none
    and reports what it would change (with --diff, each volume and the ACL before and after).
  - Never weakens a protection. It only turns wire security and auditing on and only adds
    audit operations; it replaces an ACE only when the ACE grants everyone, unless
    I(replace_aces). It refuses, before changing anything, a cluster that is not secure or
    has no encryption at rest, a regulated volume without encryption at rest (DARE is chosen
    when a volume is created), a public ACE with no declared replacement, a cluster without
    the security policies required (creating one is a decision about its ACEs, not the
    role's), and an administrators list without the principal the role acts as.
  - The functions above main() are also what m7guard's DF-* checks use (one definition of
    which volumes are regulated and of what a public ACE is).
options:
  maprcli:
    description: The maprcli command.
    type: str
    default: /opt/mapr/bin/maprcli
  regulated_volumes:
    description: Shell patterns of the regulated volumes; null for every volume but the
      C(mapr.*) system volumes (a C(mapr.*) volume is regulated only by a pattern that starts
      with C(mapr.)).
    type: list
    elements: str
  read_ace:
    description: The readAce a regulated volume gets when its own grants everyone.
    type: str
    default: ""
  write_ace:
    description: The writeAce a regulated volume gets when its own grants everyone.
    type: str
    default: ""
  replace_aces:
    description: Also replace ACEs that do not grant everyone but differ from the declared.
    type: bool
    default: false
  audit_operations:
    description: Data operations every regulated volume audits.
    type: list
    elements: str
    required: true
  cluster_admins:
    description: The principals (C(u:NAME), C(g:NAME)) that may hold fc and a on the cluster.
    type: list
    elements: str
    required: true
  acting_principal:
    description: The principal whose ticket the role uses; it must stay an administrator.
    type: str
    default: u:mapr
  security_policies:
    description: Names of the security policies that must exist and be armed (the module
      arms them); null for every security policy of the cluster, of which there must be one
      at least, none of which the module arms (it refuses a disarmed one); an empty list
      requires none (reported by DF-006).
    type: list
    elements: str
"""

RETURN = r"""
commands:
  description: The maprcli commands issued (in check mode, those that would be).
  type: list
  returned: always
volumes:
  description: The regulated volumes.
  type: list
  returned: always
"""

SYSTEM_PREFIX = "mapr."
PUBLIC = "p"
ADMIN_PERMISSIONS = ("fc", "a")
# Volume enforcement modes (SecurityGuide, EnforcingSecurityPolicies): only the default
# enforces both the security policies' ACEs and the volume's own; the last one is the
# "permissive mode", which audits policy violations instead of refusing them.
ENFORCED = "PolicyAceAndDataAce"
PERMISSIVE = "PolicyAceAuditAndDataAce"
MODES = (ENFORCED, "PolicyAceOnly", "DataAceOnly", PERMISSIVE)
# Security policy access control states (SecurityPolicyStates): Disarmed, the default of a
# new policy, enforces none of its ACEs; Denied refuses every access.
ACCESS_CONTROL = ("Armed", "Disarmed", "Denied")
ENFORCING = ("Armed", "Denied")
_TOKEN = re.compile(r"\s*(\(|\)|!|&|\||[^()!&|\s]+)")
_PRINCIPAL = re.compile(r"^(p|[ugr]:[^\s()!&|:]+)$")
_KINDS = {"user": "u", "group": "g", "role": "r"}


class DataFabricError(Exception):
    """maprcli answered with an error, or with JSON of another shape than documented."""


def reply_data(rc: int, stdout: str, stderr: str, command: str) -> list[dict[str, Any]]:
    """The `data` of a maprcli -json reply; DataFabricError for an error reply (a non-zero
    exit, status ERROR with its errors[].desc, or output that is not the documented
    envelope)."""
    try:
        reply = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        reply = None
    if isinstance(reply, dict) and reply.get("status") == "ERROR":
        errors = reply.get("errors") or []
        desc = "; ".join(str(e.get("desc", e)) if isinstance(e, dict) else str(e)
                         for e in errors) or "no description"
        raise DataFabricError(f"{command}: maprcli error: {desc}")
    if rc != 0:
        detail = (stderr or stdout).strip() or f"exit {rc}"
        raise DataFabricError(f"{command}: maprcli failed: {detail[:500]}")
    if not isinstance(reply, dict) or reply.get("status") != "OK":
        raise DataFabricError(f"{command}: not a maprcli -json reply: {stdout.strip()[:200]!r}")
    data = reply.get("data")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise DataFabricError(f"{command}: the reply's data is not a list of records")
    return data


def flag(record: dict[str, Any], key: str) -> bool | None:
    """A maprcli on/off value (true/false, 1/0, "1"/"0", "true"/"false"); None otherwise."""
    value = record.get(key)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (int, str)) else ""
    return {"1": True, "true": True, "0": False, "false": False}.get(text)


def patterns_of(value: Any) -> list[str] | None:
    """data_fabric_regulated_volumes as a list of patterns (None: the default), read as
    Ansible reads a list option: a string is split at commas. Anything else is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise DataFabricError(f"data_fabric_regulated_volumes must be a list of volume name "
                              f"patterns, not {value!r:.100}")
    return [p.strip() for p in value if p.strip()]


def regulated(volumes: list[dict[str, Any]], patterns: Any) -> list[dict[str, Any]]:
    """The volumes the patterns name (None: all but the mapr.* system volumes)."""
    patterns = patterns_of(patterns)
    out = []
    for volume in volumes:
        name = volume.get("volumename")
        if not isinstance(name, str) or not name:
            raise DataFabricError(f"a volume record has no volumename: {volume!r:.200}")
        system = name.startswith(SYSTEM_PREFIX)
        if patterns is None:
            chosen = not system
        else:
            chosen = any(fnmatch.fnmatchcase(name, p)
                         and (not system or p.startswith(SYSTEM_PREFIX)) for p in patterns)
        if chosen:
            out.append(volume)
    return sorted(out, key=lambda v: v["volumename"])


def aces(volume: dict[str, Any]) -> dict[str, Any]:
    """readAce and writeAce of a volume record (under volumeAces, or at the top level)."""
    nested = volume.get("volumeAces")
    source = nested if isinstance(nested, dict) else volume
    return {key: source.get(key) for key in ("readAce", "writeAce")}


def ace_is_public(ace: str) -> bool | None:
    """Whether an access control expression (principals u:NAME, g:NAME, r:NAME and p, the
    operators ! & | and parentheses) grants everyone: its value for a user who is no named
    principal, only `p`. None when it is not a well-formed expression."""
    tokens, pos, text = [], 0, ace.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            return None
        tokens.append(match.group(1))
        pos = match.end()
    if not tokens or any(t not in "()!&|" and not _PRINCIPAL.match(t) for t in tokens):
        return None

    def expression(i: int) -> tuple[bool, int]:
        value, i = term(i)
        while i < len(tokens) and tokens[i] in ("&", "|"):
            op = tokens[i]
            right, i = term(i + 1)
            value = (value and right) if op == "&" else (value or right)
        return value, i

    def term(i: int) -> tuple[bool, int]:
        if i >= len(tokens):
            raise ValueError("expression ends early")
        if tokens[i] == "!":
            value, i = term(i + 1)
            return not value, i
        if tokens[i] == "(":
            value, i = expression(i + 1)
            if i >= len(tokens) or tokens[i] != ")":
                raise ValueError("unbalanced parenthesis")
            return value, i + 1
        if tokens[i] in ")&|":
            raise ValueError(f"unexpected {tokens[i]}")
        return tokens[i] == PUBLIC, i + 1

    try:
        value, end = expression(0)
    except ValueError:
        return None
    return value if end == len(tokens) else None


def audited_operations(volume: dict[str, Any]) -> set[str] | None:
    """The data operations a volume audits (enableddataauditoperations), or None."""
    value = volume.get("enableddataauditoperations")
    if not isinstance(value, str):
        return None
    return {op.strip() for op in value.split(",") if op.strip()}


def audit_ops_missing(volume: dict[str, Any], wanted: list[str]) -> list[str] | None:
    ops = audited_operations(volume)
    return None if ops is None else [op for op in wanted if op not in ops]


def principal(entry: dict[str, Any]) -> str:
    """u:NAME / g:NAME / r:NAME of an ACL entry ({"Principal": "User mapr", ...})."""
    text = entry.get("Principal")
    kind, _, name = str(text).partition(" ")
    if kind.lower() not in _KINDS or not name.strip():
        raise DataFabricError(f"an ACL entry has a principal of unknown form: {text!r}")
    return f"{_KINDS[kind.lower()]}:{name.strip()}"


def permissions(entry: dict[str, Any]) -> list[str]:
    """The allowed actions of an ACL entry: a JSON list, or a string like "[login, fc]"."""
    value = entry.get("Allowed actions")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.strip().strip("[]").split(",") if v.strip()]
    raise DataFabricError(f"an ACL entry has no list of allowed actions: {entry!r:.200}")


def acl(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """principal -> allowed actions, of `maprcli acl show` data."""
    return {principal(e): permissions(e) for e in entries}


def acl_holders(entries: list[dict[str, Any]], wanted: tuple[str, ...] = ADMIN_PERMISSIONS
                ) -> dict[str, list[str]]:
    """principal -> those of `wanted` it holds (principals holding none left out)."""
    out = {}
    for name, perms in acl(entries).items():
        held = [p for p in wanted if p in perms]
        if held:
            out[name] = held
    return out


def names_of(value: Any, variable: str) -> list[str] | None:
    """A list-of-names variable (None stays None), read as Ansible reads a list option."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise DataFabricError(f"{variable} must be a list of names, not {value!r:.100}")
    return [p.strip() for p in value if p.strip()]


def policy_state(policies: list[dict[str, Any]], names: Any
                 ) -> tuple[dict[str, Any], list[str]]:
    """(name -> accesscontrol of the required security policies, required names missing),
    of `security policy list` data: names None requires every policy of the cluster."""
    wanted = names_of(names, "data_fabric_security_policies")
    found = {}
    for policy in policies:
        name = policy.get("name")
        if not isinstance(name, str) or not name:
            raise DataFabricError(f"a security policy record has no name: {policy!r:.200}")
        found[name] = policy.get("accesscontrol")
    if wanted is None:
        return dict(sorted(found.items())), []
    return ({n: found[n] for n in wanted if n in found}, [n for n in wanted if n not in found])


def cluster_refusals(dashboard: list[dict[str, Any]]) -> list[str]:
    cluster = dashboard[0].get("cluster") if len(dashboard) == 1 else None
    if not isinstance(cluster, dict):
        raise DataFabricError("dashboard info has no cluster entry")
    out = []
    if flag(cluster, "secure") is not True:
        out.append("the cluster is not secure (DF-001): secure it with configure.sh -secure "
                   "first; volume settings on an insecure cluster protect nothing")
    if flag(cluster, "dare") is not True:
        out.append("the cluster has no encryption at rest (DF-001): turn DARE on "
                   "(configure.sh -dare with a master key) before regulated data is stored")
    return out


def plan(volumes: list[dict[str, Any]], entries: list[dict[str, Any]], params: dict[str, Any],
         policies: list[dict[str, Any]]
         ) -> tuple[list[list[str]], list[str], dict[str, Any], dict[str, Any]]:
    """(maprcli argument lists, refusals, state before, state after) for the declared state."""
    commands: list[list[str]] = []
    refusals: list[str] = []
    before: dict[str, Any] = {"volumes": {}, "cluster_acl": {}, "security_policies": {}}
    after: dict[str, Any] = {"volumes": {}, "cluster_acl": {}, "security_policies": {}}
    wanted_ops = list(params["audit_operations"])
    for volume in regulated(volumes, params["regulated_volumes"]):
        name = volume["volumename"]
        ops = audited_operations(volume) or set()
        current = {"dare": flag(volume, "dare"), "wiresecurityenabled":
                   flag(volume, "wiresecurityenabled"), **aces(volume),
                   "audited": flag(volume, "audited"),
                   "audits": [op for op in wanted_ops if op in ops],
                   "enforcementmode": volume.get("enforcementmode")}
        target = dict(current)
        before["volumes"][name], after["volumes"][name] = current, target
        if current["dare"] is not True:
            refusals.append(f"volume {name} has no encryption at rest (DF-002): DARE is chosen "
                            "when a volume is created (volume create -dare true); move its data "
                            "into such a volume, or leave it out of data_fabric_regulated_volumes")
        modify: list[str] = []
        if current["wiresecurityenabled"] is not True:
            modify += ["-wiresecurityenabled", "true"]
            target["wiresecurityenabled"] = True
        for key, variable in (("readAce", "read_ace"), ("writeAce", "write_ace")):
            ace, declared = current[key], params[variable]
            public = ace_is_public(ace) if isinstance(ace, str) else True
            if public is None:
                refusals.append(f"volume {name}: {key} {ace!r} cannot be parsed")
                continue
            if not public and not (params["replace_aces"] and declared and ace != declared):
                continue
            if not declared:
                refusals.append(f"volume {name}: {key} {ace!r} grants everyone (DF-003) and "
                                f"data_fabric_{variable} is not set: declare who may "
                                f"{key[:-3]}")
                continue
            if ace_is_public(declared) is not False:
                refusals.append(f"data_fabric_{variable} {declared!r} is not an access "
                                "expression that keeps everyone (p) out")
                continue
            modify += [f"-{key}", declared]
            target[key] = declared
        mode = current["enforcementmode"]
        if mode not in MODES:
            refusals.append(f"volume {name}: enforcementmode {mode!r} is none of "
                            f"{', '.join(MODES)}")
        elif mode != ENFORCED:
            modify += ["-enforcementmode", ENFORCED]
            target["enforcementmode"] = ENFORCED
        if modify:
            commands.append(["volume", "modify", "-name", name, *modify])
        missing = [op for op in wanted_ops if op not in ops]
        if current["audited"] is not True or missing:
            audit = ["volume", "audit", "-name", name, "-enabled", "true"]
            if missing:
                audit += ["-dataauditops", ",".join(f"+{op}" for op in missing)]
            commands.append(audit)
            target["audited"] = True
            target["audits"] = list(wanted_ops)
    required, missing = policy_state(policies, params.get("security_policies"))
    if params.get("security_policies") is None and not required:
        refusals.append("the cluster has no security policy (DF-006): create the policies "
                        "that classify its regulated data (maprcli security policy create), "
                        "or set data_fabric_security_policies to the names required ([] for "
                        "none)")
    for name in missing:
        refusals.append(f"security policy {name} of data_fabric_security_policies does not "
                        "exist (DF-006): create it (maprcli security policy create); its "
                        "ACEs are a decision the role does not make")
    before["security_policies"], after["security_policies"] = required, dict(required)
    for name, state in required.items():
        if state not in ACCESS_CONTROL:
            refusals.append(f"security policy {name}: accesscontrol {state!r} is none of "
                            f"{', '.join(ACCESS_CONTROL)}")
        elif state in ENFORCING:
            continue
        elif params.get("security_policies") is None:
            # arming starts enforcing ACEs the role has not read: only a policy named is armed
            refusals.append(f"security policy {name} is {state} (DF-006): name the policies "
                            "to arm in data_fabric_security_policies; the role arms only "
                            "policies named there")
        else:
            commands.append(["security", "policy", "modify", "-name", name,
                             "-accesscontrol", "Armed"])
            after["security_policies"][name] = "Armed"
    current_acl = acl(entries)
    admins = list(params["cluster_admins"])
    if params["acting_principal"] not in admins:
        refusals.append(f"data_fabric_cluster_admins leaves out {params['acting_principal']}, "
                        "the principal the role acts as: it would revoke its own rights")
    new_acl = {p: [a for a in perms if p in admins or a not in ADMIN_PERMISSIONS]
               for p, perms in current_acl.items()}
    before["cluster_acl"], after["cluster_acl"] = current_acl, new_acl
    if new_acl != current_acl:
        commands.append(["acl", "set", "-type", "cluster", *acl_arguments(new_acl)])
    return commands, refusals, before, after


def acl_arguments(entries: dict[str, list[str]]) -> list[str]:
    """-user "NAME:perm,perm NAME:perm" -group ... for `maprcli acl set` (principals left
    with no permission are left out: acl set replaces the whole ACL)."""
    args = []
    for kind, option in (("u", "-user"), ("g", "-group")):
        parts = [f"{p[2:]}:{','.join(perms)}" for p, perms in sorted(entries.items())
                 if p.startswith(f"{kind}:") and perms]
        if parts:
            args += [option, " ".join(parts)]
    return args


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "maprcli": {"type": "str", "default": "/opt/mapr/bin/maprcli"},
            "regulated_volumes": {"type": "list", "elements": "str"},
            "read_ace": {"type": "str", "default": ""},
            "write_ace": {"type": "str", "default": ""},
            "replace_aces": {"type": "bool", "default": False},
            "audit_operations": {"type": "list", "elements": "str", "required": True},
            "cluster_admins": {"type": "list", "elements": "str", "required": True},
            "acting_principal": {"type": "str", "default": "u:mapr"},
            "security_policies": {"type": "list", "elements": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params

    def maprcli(*args: str) -> list[dict[str, Any]]:
        argv = [params["maprcli"], *args, "-json"]
        rc, out, err = module.run_command(argv)
        return reply_data(rc, out, err, " ".join(["maprcli", *args]))

    try:
        refusals = cluster_refusals(maprcli("dashboard", "info"))
        volumes = maprcli("volume", "list")
        entries = maprcli("acl", "show", "-type", "cluster")
        policies = maprcli("security", "policy", "list")
        commands, more, before, after = plan(volumes, entries, params, policies)
    except DataFabricError as exc:
        module.fail_json(msg=str(exc), commands=[])
    refusals += more
    names = sorted(before["volumes"])
    if refusals:
        module.fail_json(msg="nothing was changed: " + "; ".join(refusals), commands=[],
                         volumes=names)
    diff = {"before": json.dumps(before, indent=1, sort_keys=True) + "\n",
            "after": json.dumps(after, indent=1, sort_keys=True) + "\n"}
    shown = [" ".join(["maprcli", *c]) for c in commands]
    if module.check_mode or not commands:
        module.exit_json(changed=bool(commands), commands=shown, volumes=names, diff=diff)
    done: list[str] = []
    for command, text in zip(commands, shown):  # one text per command (Python 3.9: no strict)
        try:
            maprcli(*command)
        except DataFabricError as exc:
            module.fail_json(msg=f"{exc} (issued before it: {done or 'none'})", commands=done,
                             volumes=names)
        done.append(text)
    module.exit_json(changed=True, commands=done, volumes=names, diff=diff)


if __name__ == "__main__":
    main()
