"""Preflight checks: the PRE-* rules, evaluated on the intended configuration.

Each check is tied to one rule with `@rule` (as the host checks are) and to a scope:
`host` checks run once per inventory host on its intended variables, `controller` checks run
once for the whole deployment. A host check names the role whose variables it reads; a host
that does not receive that role reports notapplicable.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m7guard import m7i
from m7guard.checks import rule
from m7guard.locate import collections_env
from m7guard.preflight.argspecs import validate_host
from m7guard.preflight.aws import AwsCheckError, AwsView
from m7guard.preflight.intended import HostIntent, detect_controller_address
from m7guard.preflight.publicnet import world_open

SCOPE_ATTR = "__m7guard_preflight_scope__"
ROLE_ATTR = "__m7guard_preflight_role__"
AWS_ATTR = "__m7guard_preflight_aws__"

M7I_SIZES = frozenset(m7i.BY_TYPE)

_KEY_UUID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
KMS_KEY_RE = re.compile(
    rf"^(?:{_KEY_UUID}|{_ALIAS}|arn:aws[a-z-]*:kms:[a-z]{{2}}(?:-[a-z]+)+-\d:\d{{12}}:"
    rf"(?:key/{_KEY_UUID}|{_ALIAS}))$"
)


@dataclass
class Outcome:
    state: str  # pass | fail | error | notapplicable | notchecked
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What every preflight check may use."""

    root: Path
    playbooks: list[Path]
    roles_dir: Path
    params: dict[str, dict[str, Any]]
    controller_address: str | None = None
    aws: AwsView | None = None
    hosts: list[HostIntent] = field(default_factory=list)


Check = Callable[..., Outcome]


def preflight(rule_id: str, scope: str = "host", role: str | None = None,
              aws: bool = False) -> Callable[[Check], Check]:
    def decorate(fn: Check) -> Check:
        fn = rule(rule_id)(fn)
        setattr(fn, SCOPE_ATTR, scope)
        setattr(fn, ROLE_ATTR, role)
        setattr(fn, AWS_ATTR, aws)
        return fn

    return decorate


def _cidrs(values: Any) -> list[str]:
    return [str(v) for v in values or []] if isinstance(values, list | tuple) else []


# -- every role ---------------------------------------------------------------------------


@preflight("PRE-001")
def pre_001(ctx: Context, host: HostIntent) -> Outcome:
    """Every role's variables are valid for the host (meta/argument_specs.yml)."""
    if not host.roles:
        return Outcome("notapplicable", "no role of the playbooks applies to this host")
    problems = validate_host(host, ctx.roles_dir)
    evidence = {"roles": host.roles, "not_known_before_the_run": sorted(host.unresolved)}
    if problems:
        evidence["problems"] = [str(p) for p in problems]
        return Outcome("fail", "; ".join(str(p) for p in problems), evidence)
    return Outcome("pass", f"variables of {', '.join(host.roles)} are valid", evidence)


@preflight("PRE-002", scope="controller")
def pre_002(ctx: Context) -> Outcome:
    """The playbooks pass `ansible-playbook --syntax-check`."""
    if not ctx.playbooks:
        return Outcome("fail", f"no playbook found in {ctx.root / 'playbooks'}: nothing to "
                       "check (and nothing would apply the controls)", {"checked": []})
    failures = {}
    binary = _tool("ansible-playbook") or "ansible-playbook"
    # what the syntax check reads: the files beside each playbook (it may import them; not
    # every directory below, which may be large) and the roles beside it, the roles, the
    # collection's plugins and the Ansible configuration
    dirs = sorted({p.parent for p in ctx.playbooks})
    beside = [f for d in dirs for f in sorted(d.iterdir()) if f.is_file()]
    tree = _tree_digest(ctx.root, [*beside, *(d / "roles" for d in dirs), ctx.roles_dir,
                                   ctx.root / "plugins"])
    for playbook in ctx.playbooks:
        returncode, output = _syntax_check(binary, ctx.root, playbook, tree)
        if returncode != 0:
            failures[playbook.name] = output.strip()[-800:]
    checked = [p.name for p in ctx.playbooks]
    if failures:
        return Outcome("fail", f"syntax errors in {', '.join(failures)}",
                       {"checked": checked, "errors": failures})
    return Outcome("pass", f"{len(checked)} playbooks pass the syntax check",
                   {"checked": checked})


@preflight("PRE-003", scope="controller")
def pre_003(ctx: Context) -> Outcome:
    """Roles and playbooks pass ansible-lint with the production profile."""
    binary = _tool("ansible-lint")
    if binary is None:
        return Outcome("error", "ansible-lint is not installed (pip install ansible-lint)")
    targets = [str(p) for p in (ctx.root / "playbooks", ctx.roles_dir) if p.exists()]
    returncode, output = _ansible_lint(binary, ctx.root, tuple(targets), _tree_digest(
        ctx.root, [Path(t) for t in targets]))
    tail = output.strip().splitlines()[-20:]
    if returncode != 0:
        return Outcome("fail", "ansible-lint found problems", {"output": tail})
    return Outcome("pass", "ansible-lint (production profile) passed", {"targets": targets})


# -- network ------------------------------------------------------------------------------


@preflight("PRE-004", role="zero_trust_network")
def pre_004(ctx: Context, host: HostIntent) -> Outcome:
    """The controller's address is inside the SSH allow-list (zone admin)."""
    zones = host.get("zero_trust_network_zones") or {}
    admin = _cidrs(zones.get("admin") if isinstance(zones, dict) else None)
    controller = (host.get("zero_trust_network_controller_address") or ctx.controller_address
                  or detect_controller_address([host]))
    evidence = {"zero_trust_network_zones.admin": admin, "controller_address": controller}
    if not controller:
        return Outcome("error", "the controller's address is unknown: pass --controller-address",
                       evidence)
    addr = ipaddress.ip_address(str(controller))
    bad = [c for c in admin if not _is_cidr(c)]
    if bad:
        return Outcome("fail", f"zero_trust_network_zones.admin has invalid networks: {bad}",
                       evidence)
    if any(addr in ipaddress.ip_network(c, strict=False) for c in admin):
        return Outcome("pass", f"controller {controller} is inside the SSH allow-list", evidence)
    return Outcome(
        "fail",
        f"zero_trust_network_zones.admin does not contain the controller address {controller}: "
        "applying the role would cut the controller's SSH access",
        evidence,
    )


@preflight("PRE-005", role="zero_trust_network")
def pre_005(ctx: Context, host: HostIntent) -> Outcome:
    """No cluster or admin port is open to the world: no zone that the admin or cluster
    services, or any service, are opened to holds more public addresses than one network of
    the rule's minimum prefix (public_prefix_min_ipv4, public_prefix_min_ipv6)."""
    params = ctx.params.get("PRE-005", {})
    min_v4 = int(params.get("public_prefix_min_ipv4", 16))
    min_v6 = int(params.get("public_prefix_min_ipv6", 32))
    zones = host.get("zero_trust_network_zones") or {}
    if not isinstance(zones, dict):
        return Outcome("error", "zero_trust_network_zones is not a mapping of zone to networks",
                       {"zero_trust_network_zones": repr(zones)[:200]})
    service_zones = host.get("zero_trust_network_service_zones") or {}
    custom = host.get("zero_trust_network_custom_services") or {}
    unreadable: list[str] = []
    if not isinstance(service_zones, dict):
        unreadable.append("zero_trust_network_service_zones is not a mapping")
        service_zones = {}
    if not isinstance(custom, dict):
        unreadable.append("zero_trust_network_custom_services is not a mapping")
        custom = {}
    sensitive = {"admin", "cluster"}
    used_by: dict[str, list[str]] = {}
    for service, zlist in service_zones.items():
        where = f"zero_trust_network_service_zones.{service}"
        if zlist is not None and not isinstance(zlist, list):
            unreadable.append(f"{where} is not a list of zones ({type(zlist).__name__})")
            continue
        for zone in zlist or []:
            used_by.setdefault(str(zone), []).append(where)
    for service, spec in custom.items():
        where = f"zero_trust_network_custom_services.{service}"
        spec_zones = spec.get("zones", []) if isinstance(spec, dict) else None
        if not isinstance(spec_zones, list):
            unreadable.append(f"{where}.zones is not a list of zones")
            continue
        for zone in spec_zones:
            used_by.setdefault(str(zone), []).append(where)
    findings = []
    for zone, cidrs in zones.items():
        var = f"zero_trust_network_zones.{zone}"
        if not isinstance(cidrs, list):
            # a bare string such as "0.0.0.0/0" is not read as "no network"
            unreadable.append(f"{var} is not a list of networks "
                              f"({type(cidrs).__name__} {str(cidrs)[:80]!r})")
            continue
        bad = [str(c) for c in cidrs if not _is_cidr(str(c))]
        if bad:
            unreadable.append(f"{var} has entries that are not networks: {bad}")
            continue
        world = [str(c) for c in cidrs
                 if world_open(ipaddress.ip_network(str(c), strict=False), min_v4, min_v6)]
        if world and (zone in sensitive or zone in used_by):
            findings.append(f"{var} holds {', '.join(world)}"
                            + (f" (used by {', '.join(used_by[zone])})" if zone in used_by else ""))
    evidence = {"zones": sorted(map(str, zones)), "public_prefix_min_ipv4": min_v4,
                "public_prefix_min_ipv6": min_v6}
    if findings:
        return Outcome("fail", "; ".join(findings) + ": cluster or admin ports open to the world "
                       f"(wider than a public /{min_v4} or /{min_v6})",
                       evidence | {"findings": findings, "unreadable": unreadable})
    if unreadable:
        return Outcome("error", "; ".join(unreadable), evidence | {"unreadable": unreadable})
    return Outcome("pass", "no cluster or admin port is open to the world", evidence)


# -- identity -----------------------------------------------------------------------------


@preflight("PRE-006", role="kerberos_mfa")
def pre_006(ctx: Context, host: HostIntent) -> Outcome:
    """Every administrator is enrolled for the one-time code when the profile requires MFA."""
    if not ctx.params.get("PRE-006", {}).get("required", True):
        return Outcome("notapplicable", "this profile does not require MFA for administrators")
    if "kerberos_mfa_admins" not in host.variables:
        return Outcome("fail", "kerberos_mfa_admins is not set")
    # A secret kept in a vault (or another variable) is present even though its value cannot
    # be read here: what matters is that each administrator has one.
    admins = (host.get("kerberos_mfa_admins") if host.has("kerberos_mfa_admins")
              else host.raw.get("kerberos_mfa_admins")) or []
    if not isinstance(admins, list):
        return Outcome("error", "kerberos_mfa_admins cannot be read before the run")
    missing = [str(a.get("name", "?")) for a in admins
               if isinstance(a, dict) and not a.get("oath_secret")]
    evidence = {"admins": [str(a.get("name", "?")) for a in admins if isinstance(a, dict)]}
    if missing:
        return Outcome("fail", "kerberos_mfa_admins: no oath_secret (TOTP enrolment) for "
                       + ", ".join(missing), evidence | {"without_totp": missing})
    if not admins:
        return Outcome("fail", "kerberos_mfa_admins is empty: no administrator is enrolled",
                       evidence)
    return Outcome("pass", f"{len(admins)} administrators enrolled for TOTP", evidence)


@preflight("PRE-007", role="kerberos_mfa")
def pre_007(ctx: Context, host: HostIntent) -> Outcome:
    """Kerberos enctypes are AES only."""
    enctypes = [str(e) for e in host.get("kerberos_mfa_enctypes") or []]
    weak = [e for e in enctypes if not e.lower().startswith("aes")]
    evidence = {"kerberos_mfa_enctypes": enctypes}
    if not enctypes:
        return Outcome("fail", "kerberos_mfa_enctypes is empty", evidence)
    if weak:
        return Outcome("fail", f"kerberos_mfa_enctypes has non-AES enctypes: {', '.join(weak)}",
                       evidence)
    return Outcome("pass", "only AES enctypes", evidence)


# -- encryption ---------------------------------------------------------------------------


@preflight("PRE-008", role="field_encryption")
def pre_008(ctx: Context, host: HostIntent) -> Outcome:
    """KMS key ids, ARNs and aliases are well formed."""
    evidence: dict[str, Any] = {}
    bad = []
    for var in ("field_encryption_kms_key_id", "field_encryption_kms_key_alias"):
        value = host.get(var)
        if value in (None, ""):
            continue
        evidence[var] = value
        if not KMS_KEY_RE.match(str(value)):
            bad.append(f"{var} = {value!r} is not a KMS key id, key ARN or alias")
        elif str(value).startswith("alias/aws/"):
            bad.append(f"{var} = {value!r} names an AWS managed key (alias/aws/...)")
    if bad:
        return Outcome("fail", "; ".join(bad), evidence)
    if not evidence:
        return Outcome("fail", "neither field_encryption_kms_key_id nor "
                               "field_encryption_kms_key_alias is set")
    return Outcome("pass", "KMS key references are well formed", evidence)


# -- sizing -------------------------------------------------------------------------------


@preflight("PRE-009", role="m7i_profile")
def pre_009(ctx: Context, host: HostIntent) -> Outcome:
    """The inventory's instance type is an M7i size."""
    itype = host.get("m7i_instance_type")
    if not itype:
        return Outcome("notapplicable",
                       "m7i_instance_type is not pinned: the role reads it from IMDSv2 at run time")
    evidence = {"m7i_instance_type": itype}
    if str(itype) in M7I_SIZES:
        return Outcome("pass", f"{itype} is an M7i size", evidence)
    if host.get("m7i_profile_allow_generic"):
        return Outcome("pass", f"{itype} is not M7i; generic sizing is allowed for this host",
                       evidence)
    return Outcome("fail", f"m7i_instance_type {itype!r} is not an M7i size "
                           f"(known: {', '.join(sorted(M7I_SIZES))})", evidence)


@preflight("PRE-010", role="kernel_tuning")
def pre_010(ctx: Context, host: HostIntent) -> Outcome:
    """Settings that need a reboot are flagged before the change window."""
    reboots = {var: host.get(var) for var in ("kernel_tuning_reboot_ok", "audit_logging_reboot_ok")
               if host.get(var)}
    if reboots:
        return Outcome("fail", "the play will reboot this host: "
                       + ", ".join(f"{k}: true" for k in reboots)
                       + " (kernel command line, immutable audit rules)", {"reboot": reboots})
    return Outcome("pass", "no reboot during the play; settings that need one are reported in "
                           "kernel_tuning_reboot_required", {})


# -- AWS (--aws) --------------------------------------------------------------------------


def _instance(ctx: Context, host: HostIntent) -> Any:
    if ctx.aws is None:
        raise AwsCheckError("AWS checks need --aws")
    cache = ctx.params.setdefault("_instances", {})
    if host.name not in cache:
        cache[host.name] = ctx.aws.instance_facts(
            host.name, host.get("m7guard_ec2_instance_id"), host.get("ansible_host") or host.name
        )
    return cache[host.name]


@preflight("PRE-011", role="m7i_profile", aws=True)
def pre_011(ctx: Context, host: HostIntent) -> Outcome:
    """The host's EC2 instance exists and is an M7i of the inventory's size."""
    facts = _instance(ctx, host)
    if facts.error:
        return Outcome("fail", facts.error)
    evidence = {"instance": facts.instance_id, "type": facts.instance_type,
                "m7i_instance_type": host.get("m7i_instance_type")}
    if facts.instance_type not in M7I_SIZES:
        return Outcome("fail", f"instance {facts.instance_id} is {facts.instance_type}, not M7i",
                       evidence)
    pinned = host.get("m7i_instance_type")
    if pinned and pinned != facts.instance_type:
        return Outcome("fail", f"instance {facts.instance_id} is {facts.instance_type} but "
                               f"m7i_instance_type says {pinned}", evidence)
    return Outcome("pass", f"instance {facts.instance_id} is {facts.instance_type}", evidence)


@preflight("PRE-012", role="m7i_profile", aws=True)
def pre_012(ctx: Context, host: HostIntent) -> Outcome:
    """IMDSv2 (session tokens) is required on the instance."""
    facts = _instance(ctx, host)
    if facts.error:
        return Outcome("fail", facts.error)
    evidence = {"instance": facts.instance_id, "HttpTokens": facts.imds_tokens}
    if facts.imds_tokens == "required":
        return Outcome("pass", "IMDSv2 is required", evidence)
    return Outcome("fail", f"instance {facts.instance_id} allows IMDSv1 "
                           f"(HttpTokens={facts.imds_tokens})", evidence)


@preflight("PRE-013", role="m7i_profile", aws=True)
def pre_013(ctx: Context, host: HostIntent) -> Outcome:
    """Every EBS volume is encrypted with a customer managed KMS key."""
    facts = _instance(ctx, host)
    if facts.error:
        return Outcome("fail", facts.error)
    evidence = {"instance": facts.instance_id, "volumes": facts.volumes}
    if not facts.volumes:
        return Outcome("fail", f"instance {facts.instance_id} has no EBS volume to check",
                       evidence)
    bad = [v["volume"] for v in facts.volumes
           if not v["encrypted"] or v["key_manager"] != "CUSTOMER"]
    if bad:
        return Outcome("fail", "volumes not encrypted with a customer managed key: "
                       + ", ".join(bad), evidence)
    return Outcome("pass", "every volume is encrypted with a customer managed key", evidence)


@preflight("PRE-014", role="m7i_profile", aws=True)
def pre_014(ctx: Context, host: HostIntent) -> Outcome:
    """No security group opens a Data Fabric cluster or admin port to the world."""
    facts = _instance(ctx, host)
    if facts.error:
        return Outcome("fail", facts.error)
    evidence = {"instance": facts.instance_id, "world_open": facts.world_open}
    if facts.world_open:
        shown = "; ".join(f"{w['group']} {w['cidr']} ports {w['ports']}" for w in facts.world_open)
        return Outcome("fail", f"open to the world: {shown}", evidence)
    return Outcome("pass", "no cluster or admin port open to the world", evidence)


@preflight("PRE-015", scope="controller", aws=True)
def pre_015(ctx: Context) -> Outcome:
    """The field-encryption KMS key has automatic rotation on."""
    if ctx.aws is None:
        raise AwsCheckError("AWS checks need --aws")
    keys = sorted({
        str(key) for h in ctx.hosts if "field_encryption" in h.roles
        if (key := h.get("field_encryption_kms_key_id") or h.get("field_encryption_kms_key_alias"))
    })
    if not keys:
        return Outcome("notapplicable", "no host uses field_encryption with a KMS key")
    off = [k for k in keys if not ctx.aws.key_rotation(k)]
    if off:
        return Outcome("fail", f"automatic rotation is off for {', '.join(off)}", {"keys": keys})
    return Outcome("pass", f"rotation is on for {', '.join(keys)}", {"keys": keys})


# The files besides the targets that change what ansible-lint reports.
_LINT_CONFIG = (".ansible-lint", ".ansible-lint.yml", ".yamllint", ".yamllint.yml", "ansible.cfg")


def _tree_digest(root: Path, targets: list[Path]) -> str:
    """SHA-256 over the path and content of every file under targets (a directory, or a file)
    and of the lint configuration at root (ansible.cfg among it): the same digest means
    ansible-lint, or the syntax check, sees the same input."""
    digest = hashlib.sha256()
    files = [root / name for name in _LINT_CONFIG if (root / name).is_file()]
    for target in targets:
        if target.is_file():
            files.append(target)
        files.extend(sorted(p for p in target.rglob("*") if p.is_file()))
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _ansible_lint(binary: str, root: Path, targets: tuple[str, ...],
                  digest: str) -> tuple[int, str]:
    """One ansible-lint run per process and input: a preflight that runs PRE-003 again on an
    unchanged tree (a second profile, a test) reuses the result; any changed byte of the
    roles, playbooks or lint configuration (digest) runs it again."""
    del digest  # part of the cache key only
    proc = subprocess.run(
        [binary, "--profile", "production", "--nocolor", "-q", *targets],
        capture_output=True, text=True, cwd=root, timeout=900, check=False,
        env=collections_env(root),
    )
    return proc.returncode, proc.stdout + proc.stderr


@functools.lru_cache(maxsize=64)
def _syntax_check(binary: str, root: Path, playbook: Path, digest: str) -> tuple[int, str]:
    """`ansible-playbook --syntax-check` of one playbook, once per process and input, as
    _ansible_lint: a preflight that checks the same unchanged tree again (a second profile, a
    test) reuses the result; a changed byte of a playbook, a role, a plugin or the Ansible
    configuration (digest) runs it again. Its errors (stderr, else stdout)."""
    del digest  # part of the cache key only
    proc = subprocess.run(
        [binary, "--syntax-check", "-i", "localhost,", str(playbook)],
        capture_output=True, text=True, cwd=root, timeout=300, check=False,
        env=collections_env(root),
    )
    return proc.returncode, proc.stderr or proc.stdout


def _tool(name: str) -> str | None:
    """A tool of this Python environment first (a venv need not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def all_checks() -> list[Check]:
    return [fn for name, fn in sorted(globals().items())
            if name.startswith("pre_") and callable(fn) and hasattr(fn, SCOPE_ATTR)]
