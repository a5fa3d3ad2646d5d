"""Kerberos, MFA and sshd checks (kerberos_mfa): the IDN-* rules of policies/rules/kerberos_mfa/.

Kerberos client and keytab (IDN-001 to IDN-003), the PAM stacks of sshd and sudo
(IDN-004, IDN-005, IDN-010: walked with every result their modules can return, see
support/pam.py), sshd's effective settings per connection (IDN-006 to IDN-009, IDN-011: asked
from `sshd -T`, see support/sshd.py) and the Data Fabric security files (IDN-012 to IDN-014).

An account allowed in without a second factor is reported by IDN-011, which fails while
such an exemption exists; a role that grants one on purpose records a waiver on the host,
so the audit shows `waived` with the justification. IDN-006 checks that any such
exemption is public-key only and limited to the networks recorded for it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from m7guard.checks import rule
from m7guard.checks.support.files import new_marker, read_files
from m7guard.checks.support.krb5 import (
    Profile,
    boolean,
    duration,
    enctypes,
    parse_jaas,
    parse_klist,
    parse_profile,
)
from m7guard.checks.support.pam import (
    ModuleModel,
    PamError,
    PamLine,
    PamUnknownError,
    Path,
    first_violation,
    outcomes,
    read_stack,
    successes,
)
from m7guard.checks.support.sshd import (
    CONFIG_FILES,
    OUTSIDE,
    PROBE_USER,
    Context,
    context_script,
    in_networks,
    parse_contexts,
    parse_match,
    representative,
    seconds,
    stand_in,
    timeout_for,
)
from m7guard.checks.support.verdict import EvidenceError, conclude

KRB5_CONF = "/etc/krb5.conf"
HOST_KEYTAB = "/etc/krb5.keytab"
EXEMPTIONS = "/etc/m7guard/kerberos_mfa/exemptions.json"
MAPR_CONF = "/opt/mapr/conf"
SHELL_PROFILES = "/etc/profile /etc/profile.d/*.sh /etc/bash.bashrc"


def _require(problems: list[str]) -> None:
    assert not problems, "; ".join(problems)


# --- fixtures: one read per host -----------------------------------------------------------


@pytest.fixture(scope="module")
def krb5(host: Any) -> tuple[Profile, list[str]]:
    """The client profile: /etc/krb5.conf and the files it includes; and the files read."""
    files = read_files(host, KRB5_CONF)
    if KRB5_CONF not in files:
        return Profile(), []
    profile = parse_profile(files[KRB5_CONF])
    read = [KRB5_CONF]
    patterns = []
    for directive in profile.includes:
        kind, _, target = directive.partition(" ")
        patterns.append(shlex.quote(target.strip()) + ("/*" if kind == "includedir" else ""))
    if patterns:
        for path, text in sorted(read_files(host, " ".join(patterns)).items()):
            parse_profile(text, profile)
            read.append(path)
    return profile, read


@pytest.fixture(scope="module")
def pam_files(host: Any) -> dict[str, str]:
    return read_files(host, "/etc/pam.d/*")


@dataclass
class SshdView:
    """sshd's global settings and its settings for each user and address worth asking about."""

    error: str = ""
    global_: Context = field(default_factory=lambda: Context(None, None))
    contexts: list[Context] = field(default_factory=list)
    exemptions: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    evaluated: dict[str, Any] = field(default_factory=dict)

    def exemption_for(self, ctx: Context) -> dict[str, Any] | None:
        for ex in self.exemptions:
            if ex.get("account") == ctx.user and in_networks(
                ctx.address or "", ex.get("networks", [])
            ):
                return ex
        return None


MAX_SSHD_USERS = 64


def _sshd_files(host: Any) -> dict[str, str]:
    """sshd_config, its drop-ins and every file an Include names (relative to /etc/ssh)."""
    files = read_files(host, f"{CONFIG_FILES} {EXEMPTIONS}")
    asked: set[str] = set()
    for _ in range(4):
        wanted = []
        for path, text in files.items():
            if path == EXEMPTIONS:
                continue
            for pattern in parse_match(text).includes:
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                if full not in asked:
                    asked.add(full)
                    wanted.append(full)
        if not wanted:
            break
        more = read_files(host, " ".join(w.replace(" ", "\\ ") for w in wanted))
        if not set(more) - set(files):
            break
        files.update(more)
    return files


def accounts(host: Any) -> tuple[list[list[str]], list[list[str]]]:
    """(passwd entries, group entries) as field lists, from getent (one round trip)."""
    m = new_marker()
    out = host.run("sh -c %s", f"getent passwd; echo '{m}'; getent group").stdout
    passwd, _, group = out.partition(m)
    return (
        [line.split(":") for line in passwd.splitlines() if line.count(":") >= 6],
        [line.split(":") for line in group.splitlines() if line.count(":") >= 3],
    )


def group_members(
    name: str, passwd: list[list[str]], groups: list[list[str]]
) -> set[str] | None:
    """Users in group `name`: listed members and users whose primary group it is (None when
    there is no such group)."""
    entry = next((g for g in groups if g[0] == name), None)
    if entry is None:
        return None
    members = {m for m in entry[3].split(",") if m}
    return members | {p[0] for p in passwd if p[3] == entry[2]}


@pytest.fixture(scope="module")
def sshd(host: Any) -> SshdView:
    files = _sshd_files(host)
    view = SshdView()
    if EXEMPTIONS in files:
        try:
            view.exemptions = list(json.loads(files.pop(EXEMPTIONS)).get("exemptions", []))
        except (ValueError, AttributeError):
            view.error = f"{EXEMPTIONS} is not valid JSON"
    targets = parse_match("\n".join(files.values()))
    view.unknown += targets.unknown
    users = set(targets.users)
    users |= {PROBE_USER, "root"} | {str(ex.get("account")) for ex in view.exemptions}
    if targets.user_patterns or targets.group_patterns:
        passwd, groups = accounts(host)
        if not passwd:
            view.unknown.append("getent passwd lists no account: Match User patterns and Match "
                                "Group blocks cannot be evaluated")
        matched_groups: dict[str, list[str]] = {}
        for pattern in sorted(targets.group_patterns):
            for name in sorted(g[0] for g in groups if fnmatch.fnmatchcase(g[0], pattern)):
                members = group_members(name, passwd, groups) or set()
                matched_groups[name] = sorted(members)
                users |= members
            if not any(fnmatch.fnmatchcase(g[0], pattern) for g in groups):
                matched_groups[pattern] = []
        for pattern in sorted(targets.user_patterns):
            users |= {p[0] for p in passwd if fnmatch.fnmatchcase(p[0], pattern)}
            users.add(stand_in(pattern))
        view.evaluated["match_groups"] = matched_groups
        view.evaluated["match_user_patterns"] = sorted(targets.user_patterns)
    if len(users) > MAX_SSHD_USERS:
        view.unknown.append(f"{len(users)} users are named by Match blocks: more than the "
                            f"{MAX_SSHD_USERS} sshd -T evaluations allowed")
        users = set(sorted(users)[:MAX_SSHD_USERS])
    view.evaluated["users"] = sorted(users)
    patterns = set(targets.addresses)
    for ex in view.exemptions:
        patterns.update(str(n) for n in ex.get("networks", []))
    addresses = set(OUTSIDE) | {a for p in patterns if (a := representative(p))}
    m = new_marker()
    result = host.run("sh -c %s", context_script(users, addresses, m, targets))
    contexts = parse_contexts(result.stdout, m)
    if not contexts or "authenticationmethods" not in contexts[0].settings:
        view.error = view.error or f"sshd -T failed: {result.stdout.strip()[-300:]}"
        return view
    view.global_ = contexts[0]
    view.contexts = [c for c in contexts[1:] if "authenticationmethods" in c.settings]
    view.unknown += [f"sshd -T -C for {c.label()} printed no settings: {c.raw.strip()[-200:]}"
                     for c in contexts[1:] if "authenticationmethods" not in c.settings]
    view.evaluated["contexts"] = len(contexts) - 1
    if targets.local_ports or targets.ports:
        view.evaluated["local_ports"] = sorted(targets.ports | targets.local_ports)
    return view


def _sshd_ok(view: SshdView, evidence: dict[str, Any]) -> None:
    """Error when sshd's settings could not be read; what was evaluated goes to evidence."""
    if view.error:
        raise EvidenceError(view.error)
    evidence["evaluated"] = view.evaluated
    if view.unknown:
        evidence["not_evaluated"] = view.unknown


# --- Kerberos client ------------------------------------------------------------------------


@rule("IDN-001")
def test_idn_001(
    krb5: tuple[Profile, list[str]], params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """The Kerberos client names its realm and KDCs, guesses nothing from DNS, bounds tickets."""
    profile, read = krb5
    assert read, f"{KRB5_CONF} does not exist: no Kerberos client is configured"
    evidence["files"] = read
    realm = profile.value("default_realm")
    kdcs = profile.realms.get(realm or "", {}).get("kdc", [])
    evidence.update(default_realm=realm, kdcs=kdcs)
    problems = []
    if not realm:
        problems.append("default_realm is not set")
    elif not kdcs:
        problems.append(f"realm {realm} lists no kdc: KDCs would be looked up in DNS")
    for key in ("dns_lookup_kdc", "dns_lookup_realm", "dns_canonicalize_hostname", "rdns"):
        value = profile.value(key)
        evidence[key] = f"{value}{'' if profile.explicit(key) else ' (default)'}"
        if boolean(value) is not False:
            problems.append(f"{key} is {value}: it must be false")
    for key, limit in (
        ("ticket_lifetime", params["max_ticket_lifetime"]),
        ("renew_lifetime", params["max_renew_lifetime"]),
    ):
        value = profile.value(key)
        secs = duration(value)
        evidence[key] = f"{value} ({secs} s)"
        if secs is None or secs > int(limit):
            problems.append(f"{key} is {value}: at most {limit} seconds")
    _require(problems)


@rule("IDN-002")
def test_idn_002(
    krb5: tuple[Profile, list[str]], params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """Kerberos uses AES encryption types only and refuses weak crypto."""
    profile, read = krb5
    assert read, f"{KRB5_CONF} does not exist: the library defaults allow more than AES"
    allowed = set(params["allowed_enctypes"])
    problems = []
    weak = profile.value("allow_weak_crypto")
    evidence["allow_weak_crypto"] = weak
    if boolean(weak) is not False:
        problems.append(f"allow_weak_crypto is {weak}")
    for key in ("permitted_enctypes", "default_tkt_enctypes", "default_tgs_enctypes"):
        listed = enctypes(profile.value(key))
        evidence[key] = listed
        if not listed:
            problems.append(f"{key} is not set: the library default includes non-AES types")
        elif bad := [e for e in listed if e not in allowed]:
            problems.append(f"{key} allows {', '.join(bad)}")
    _require(problems)


@rule("IDN-003")
def test_idn_003(
    host: Any,
    krb5: tuple[Profile, list[str]],
    params: dict[str, Any],
    evidence: dict[str, Any],
) -> None:
    """The host keytab exists, only root can read it, and it holds AES keys for host/."""
    st = host.run("stat -c '%%U %%G %%a' %s", HOST_KEYTAB)
    assert st.rc == 0, f"{HOST_KEYTAB} does not exist: the node has no Kerberos identity"
    owner, group, mode = st.stdout.split()
    evidence["stat"] = f"{owner}:{group} {mode}"
    problems = []
    if (owner, group) != ("root", "root") or int(mode, 8) & 0o177:
        problems.append(f"{HOST_KEYTAB} is {owner}:{group} {mode}: it must be root:root 0600")
    listing = host.run("klist -k -e %s", HOST_KEYTAB)
    if listing.rc != 0:
        problems.append(f"klist cannot read {HOST_KEYTAB}: {listing.stderr.strip()[:200]}")
        _require(problems)
    entries = parse_klist(listing.stdout)
    realm = krb5[0].value("default_realm") or ""
    evidence["keys"] = [f"{e.principal} {e.enctype}" for e in entries]
    hosts = [e for e in entries if e.principal.startswith("host/")]
    if not any(e.principal.endswith("@" + realm) for e in hosts):
        problems.append(f"no host/<node>@{realm or 'REALM'} key in {HOST_KEYTAB}")
    if weak := sorted({e.enctype for e in entries} - set(params["allowed_enctypes"])):
        problems.append(f"{HOST_KEYTAB} holds keys of non-AES types: {', '.join(weak)}")
    _require(problems)


# --- PAM ------------------------------------------------------------------------------------


def _stack(
    pam_files: dict[str, str], service: str, problems: list[str], unknowns: list[str]
) -> list[PamLine]:
    """The auth lines of a service; a stack without any is recorded as not evaluated."""
    try:
        lines = read_stack(service, "auth", pam_files)
    except PamUnknownError as exc:
        unknowns.append(f"{service}: {exc}")
        return []
    except PamError as exc:
        problems.append(f"{service}: {exc}")
        return []
    if not lines:
        unknowns.append(
            f"{service}: no auth lines in /etc/pam.d/{service} (includes followed): an empty "
            "stack proves nothing about how logins are authenticated"
        )
    return lines


def _stacks(pam_files: dict[str, str], params: dict[str, Any], evidence: dict[str, Any],
            problems: list[str], unknowns: list[str]) -> Iterator[tuple[str, list[PamLine]]]:
    """Each service of the rule with its auth lines (_stack), recorded as its evidence."""
    for service in params["services"]:
        lines = _stack(pam_files, service, problems, unknowns)
        evidence[service] = [str(line) for line in lines]
        yield service, lines


def _named_groups(lines: Iterable[PamLine]) -> frozenset[str]:
    groups: set[str] = set()
    for line in lines:
        if line.name == "pam_succeed_if":
            for i, arg in enumerate(line.args[:-1]):
                if arg in ("ingroup", "notingroup"):
                    groups.update(line.args[i + 1].split(":"))
    return frozenset(groups)


def _succeeded(path: Path, modules: Iterable[str]) -> bool:
    return any("success" in path.result_of(m) for m in modules)


@rule("IDN-004")
def test_idn_004(
    pam_files: dict[str, str], params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """Kerberos is the first factor of sshd and sudo: nothing authenticates without it."""
    problems: list[str] = []
    unknowns: list[str] = []
    first = params["first_factor_modules"]
    for service, lines in _stacks(pam_files, params, evidence, problems, unknowns):
        if not lines:
            continue
        groups = _named_groups(lines)
        for admin in (False, True):
            paths = outcomes(lines, ModuleModel(admin, groups))
            bad = first_violation(paths, lambda p: _succeeded(p, first))
            if bad is not None:
                problems.append(
                    f"{service} authenticates without {'/'.join(first)}: {bad.describe()}"
                )
                break
            if not successes(paths):
                problems.append(f"{service}: no way through the stack succeeds")
                break
    conclude(problems, unknowns)


@rule("IDN-005")
def test_idn_005(
    host: Any, pam_files: dict[str, str], params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """Administrators need a TOTP code in sshd and sudo, and every one of them is enrolled."""
    problems: list[str] = []
    unknowns: list[str] = []
    groups = frozenset(params["admin_groups"])
    oath_file = params["oath_file"]
    for service, lines in _stacks(pam_files, params, evidence, problems, unknowns):
        oath = [line for line in lines if line.name == "pam_oath"]
        if lines and not oath:
            problems.append(f"{service} has no pam_oath: administrators need no second factor")
            continue
        for line in oath:
            if line.arg("usersfile") != oath_file or line.arg("digits") not in (None, "6"):
                problems.append(f"{service}: {line} does not use {oath_file} with 6 digits")
        bad = first_violation(
            outcomes(lines, ModuleModel(True, groups)), lambda p: _succeeded(p, ["pam_oath"])
        )
        if bad is not None:
            problems.append(
                f"{service} lets an administrator in without the code: {bad.describe()}"
            )
    st = host.run("stat -c '%%U %%G %%a' %s", oath_file)
    if st.rc != 0:
        problems.append(f"{oath_file} does not exist")
    else:
        evidence["oath_file"] = f"{oath_file} {st.stdout.strip()}"
        owner, group, mode = st.stdout.split()
        if (owner, group) != ("root", "root") or int(mode, 8) & 0o177:
            problems.append(f"{oath_file} is {owner}:{group} {mode}: it must be root:root 0600")
    enrolled = set(host.run("awk '!/^#/ && NF >= 4 {print $2}' %s", oath_file).stdout.split())
    passwd, all_groups = accounts(host)
    members: set[str] = set()
    for group in sorted(groups):
        # Asked by name as well: a directory group need not appear when groups are listed.
        entry = host.run("getent group %s", group).stdout.strip().split(":")
        known = [g for g in all_groups if g[0] != group] + ([entry] if len(entry) >= 4 else [])
        found = group_members(group, passwd, known or all_groups)
        if found is None:
            unknowns.append(f"the administrators' group {group} does not exist: who must "
                            "enrol for a TOTP code is unknown")
            continue
        members |= found
    evidence.update(administrators=sorted(members), enrolled=sorted(enrolled))
    if missing := sorted(members - enrolled):
        problems.append(f"administrators without a TOTP enrolment: {', '.join(missing)}")
    conclude(problems, unknowns)


def _preauth(path: Path) -> list[str]:
    return [
        r for line, r in path.executed if line.name == "pam_faillock" and "preauth" in line.args
    ]


def _faillock_settings(host: Any, line: PamLine) -> dict[str, int]:
    """deny, unlock_time and fail_interval: pam_faillock's defaults, faillock.conf, then args."""
    conf = read_files(host, "/etc/security/faillock.conf").get("/etc/security/faillock.conf", "")
    values = {"deny": 3, "unlock_time": 600, "fail_interval": 900}
    for raw in conf.splitlines():
        key, sep, value = raw.split("#", 1)[0].partition("=")
        if sep and key.strip() in values and value.strip().isdigit():
            values[key.strip()] = int(value.strip())
    for key in values:
        arg = line.arg(key)
        if arg is not None and arg.isdigit():
            values[key] = int(arg)
    return values


@rule("IDN-010")
def test_idn_010(
    host: Any, pam_files: dict[str, str], params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """Repeated failed logins lock the account (pam_faillock in sshd and sudo)."""
    problems: list[str] = []
    unknowns: list[str] = []
    first = params["first_factor_modules"]
    for service, lines in _stacks(pam_files, params, evidence, problems, unknowns):
        pre = [line for line in lines if line.name == "pam_faillock" and "preauth" in line.args]
        if not pre:
            if lines:
                problems.append(f"{service} has no pam_faillock preauth: failures never lock")
            continue
        for admin in (False, True):
            paths = outcomes(lines, ModuleModel(admin, _named_groups(lines)))
            locked_in = first_violation(paths, lambda p: "fail" not in _preauth(p))
            if locked_in is not None:
                problems.append(f"{service} lets a locked account in: {locked_in.describe()}")
                break
            uncounted = [
                p
                for p in paths
                if any(
                    r in ("fail", "ignore") for m in (*first, "pam_oath") for r in p.result_of(m)
                )
                and not any(
                    line.name == "pam_faillock" and "authfail" in line.args
                    for line, _ in p.executed
                )
            ]
            if uncounted:
                problems.append(
                    f"{service} does not count a failed factor: {uncounted[0].describe()}"
                )
                break
        settings = _faillock_settings(host, pre[0])
        evidence[f"{service} policy"] = settings
        if not 1 <= settings["deny"] <= int(params["max_deny"]):
            problems.append(f"{service}: deny={settings['deny']} (1 to {params['max_deny']})")
        unlock = settings["unlock_time"]
        if unlock != 0 and unlock < int(params["min_unlock_time"]):
            problems.append(f"{service}: unlock_time={unlock} (0 or {params['min_unlock_time']}+)")
    conclude(problems, unknowns)


# --- sshd -----------------------------------------------------------------------------------


def _why_single_factor(ctx: Context) -> str:
    methods = ctx.methods()
    shown = "any method" if methods is None else " or ".join(",".join(m) for m in methods)
    return f"{ctx.label()}: {shown}"


@rule("IDN-006")
def test_idn_006(sshd: SshdView, evidence: dict[str, Any]) -> None:
    """SSH logins need keyboard-interactive PAM (the code); exemptions are key-only and narrow."""
    _sshd_ok(sshd, evidence)
    g = sshd.global_
    evidence["global"] = {
        k: g.get(k)
        for k in (
            "authenticationmethods",
            "kbdinteractiveauthentication",
            "usepam",
            "passwordauthentication",
            "permitemptypasswords",
        )
    }
    evidence["recorded_exemptions"] = [
        {k: ex.get(k) for k in ("account", "authentication", "networks")} for ex in sshd.exemptions
    ]
    problems = []
    if not g.needs_second_factor():
        problems.append(
            f"global: {_why_single_factor(g).split(': ', 1)[1]} without a second factor"
        )
    if g.get("passwordauthentication") != "no":
        problems.append("PasswordAuthentication is not no")
    for ctx in sshd.contexts:
        if ctx.needs_second_factor():
            continue
        exemption = sshd.exemption_for(ctx)
        if exemption is not None and ctx.key_only():
            continue
        reason = "not a recorded exemption" if exemption is None else "not public-key only"
        problems.append(f"{_why_single_factor(ctx)} ({reason})")
    conclude(problems, sshd.unknown)


@rule("IDN-007")
def test_idn_007(sshd: SshdView, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """No root login, no empty passwords, few tries, a short login grace time, no rhosts."""
    _sshd_ok(sshd, evidence)
    g = sshd.global_
    keys = (
        "permitrootlogin",
        "permitemptypasswords",
        "maxauthtries",
        "logingracetime",
        "hostbasedauthentication",
        "ignorerhosts",
        "permituserenvironment",
    )
    evidence["global"] = {k: g.get(k) for k in keys}
    expected = {
        "permitemptypasswords": "no",
        "hostbasedauthentication": "no",
        "ignorerhosts": "yes",
        "permituserenvironment": "no",
        "permitrootlogin": "no",
    }
    problems = [f"{k} is {g.get(k)}, not {v}" for k, v in expected.items() if g.get(k) != v]
    tries = int(g.get("maxauthtries", "6"))
    if tries > int(params["max_auth_tries"]):
        problems.append(f"MaxAuthTries is {tries} (at most {params['max_auth_tries']})")
    grace = seconds(g.get("logingracetime", "120"))
    if not grace or grace > int(params["max_login_grace_time"]):
        problems.append(
            f"LoginGraceTime is {g.get('logingracetime')} (1 to {params['max_login_grace_time']} s)"
        )
    for ctx in sshd.contexts:
        if ctx.get("permitemptypasswords") != "no":
            problems.append(f"{ctx.label()}: empty passwords allowed")
        # Settings a Match block may change for some connections only.
        for key in ("hostbasedauthentication", "ignorerhosts"):
            if ctx.get(key) != expected[key]:
                problems.append(f"{ctx.label()}: {key} is {ctx.get(key)}, not {expected[key]}")
        ctx_tries = ctx.get("maxauthtries", "6")
        if not ctx_tries.isdigit() or int(ctx_tries) > int(params["max_auth_tries"]):
            problems.append(f"{ctx.label()}: MaxAuthTries is {ctx_tries} "
                            f"(at most {params['max_auth_tries']})")
        if ctx.user != "root" or ctx.get("permitrootlogin") == "no":
            continue
        if ctx.get("permitrootlogin") == "yes" or not (sshd.exemption_for(ctx) and ctx.key_only()):
            problems.append(
                f"root from {ctx.address}: PermitRootLogin {ctx.get('permitrootlogin')}"
            )
    conclude(problems, sshd.unknown)


SIGNATURE_KEYS = ("hostkeyalgorithms", "pubkeyacceptedalgorithms", "casignaturealgorithms")


@rule("IDN-008")
def test_idn_008(sshd: SshdView, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """sshd offers only strong ciphers, MACs, key exchanges and signature algorithms."""
    _sshd_ok(sshd, evidence)
    g = sshd.global_
    problems = []
    for key, allowed in (
        ("ciphers", "allowed_ciphers"),
        ("macs", "allowed_macs"),
        ("kexalgorithms", "allowed_kex_algorithms"),
    ):
        offered = [a for a in g.get(key).split(",") if a]
        evidence[key] = offered
        if bad := [a for a in offered if a not in params[allowed]]:
            problems.append(f"{key}: {', '.join(bad)} not allowed")
    forbidden = set(params["forbidden_signature_algorithms"])

    def offered(ctx: Context, key: str) -> str:
        # OpenSSH before 8.5 names the user-key list PubkeyAcceptedKeyTypes in sshd -T
        if key == "pubkeyacceptedalgorithms" and key not in ctx.settings:
            return ctx.get("pubkeyacceptedkeytypes")
        return ctx.get(key)

    def weak(ctx: Context, key: str) -> list[str]:
        names = [a for a in offered(ctx, key).split(",") if a]
        return [a for a in names if a in forbidden or a.split("-cert-v01@")[0] in forbidden]

    missing = [key for key in SIGNATURE_KEYS if not offered(g, key)]
    if missing:
        raise EvidenceError(f"sshd -T names no {', '.join(missing)}: the signature algorithms "
                            "sshd accepts cannot be judged")
    for key in SIGNATURE_KEYS:
        evidence[key] = offered(g, key).split(",")
        if bad := weak(g, key):
            problems.append(f"{key}: {', '.join(bad)} not allowed")
    # A Match block may accept other user-key algorithms for some connections.
    for ctx in sshd.contexts:
        for key in ("pubkeyacceptedalgorithms", "casignaturealgorithms"):
            if offered(ctx, key) != offered(g, key) and (bad := weak(ctx, key)):
                problems.append(f"{ctx.label()}: {key}: {', '.join(bad)} not allowed")
    conclude(problems, sshd.unknown)


_TMOUT = re.compile(
    r"(?:^|[\s;])(?:export\s+|readonly\s+|declare\s+-\w+\s+|typeset\s+-\w+\s+)?TMOUT=(\d+)"
)
_READONLY = re.compile(r"(?:readonly|declare\s+-\w*r\w*|typeset\s+-\w*r\w*)\s+(?:\S+\s+)*TMOUT\b")
_COMMENT = re.compile(r"(?:^|(?<=\s))#.*$")
_DECLARED = re.compile(r'^declare -(\S+) TMOUT="?(\d*)"?$', re.MULTILINE)
# What a login shell of root ends up with after /etc/profile and everything it sources.
LOGIN_SHELL_TMOUT = (
    "env -u TMOUT bash -l -c 'declare -p TMOUT 2>/dev/null || echo unset' </dev/null"
)


def shell_code(text: str) -> str:
    """Shell text without its comments (a `#` at the start of a word to the end of the line)."""
    return "\n".join(_COMMENT.sub("", line) for line in text.splitlines())


_OPENSSH = re.compile(r"OpenSSH_(\d+)\.(\d+)")


def _openssh_version(host: Any) -> tuple[int, int] | None:
    """The installed OpenSSH's version (ssh -V prints it on stderr), or None."""
    found = _OPENSSH.search(host.run("ssh -V 2>&1").stdout)
    return (int(found.group(1)), int(found.group(2))) if found else None


@rule("IDN-009")
def test_idn_009(
    host: Any, sshd: SshdView, params: dict[str, Any], evidence: dict[str, Any]
) -> None:
    """Idle interactive sessions end in time (sshd ChannelTimeout and a read-only TMOUT)."""
    _sshd_ok(sshd, evidence)
    limit = int(params["max_idle_seconds"])
    problems = []
    contexts = [sshd.global_, *sshd.contexts]
    if "channeltimeout" not in sshd.global_.settings:
        # ChannelTimeout came with OpenSSH 9.2 (whose sshd -T leaves it out while unset):
        # before 9.2 only the read-only TMOUT (below) can end idle shells, and it is judged
        # alone; otherwise a missing value is "none", idle shells staying open.
        version = _openssh_version(host)
        evidence["openssh"] = None if version is None else ".".join(map(str, version))
        if version is not None and version < (9, 2):
            evidence["channeltimeout"] = "unknown to this sshd (OpenSSH before 9.2)"
            contexts = []
    for ctx in contexts:
        timeout = timeout_for(ctx.get("channeltimeout", "none"), "session:shell")
        if ctx.user is None:
            evidence["channeltimeout"] = ctx.get("channeltimeout")
        if timeout is None or timeout > limit:
            problems.append(
                f"{ctx.label()}: idle shells stay open ({ctx.get('channeltimeout') or 'none'})"
            )
            break
    values: dict[str, list[int]] = {}
    readonly = False
    for path, text in read_files(host, SHELL_PROFILES).items():
        code = shell_code(text)
        found = [int(v) for v in _TMOUT.findall(code)]
        if found:
            values[path] = found
        readonly = readonly or bool(_READONLY.search(code))
    evidence.update(tmout=values, tmout_readonly=readonly)
    every = [v for vs in values.values() for v in vs]
    if not every:
        problems.append("no shell profile sets TMOUT")
    elif any(v == 0 or v > limit for v in every):
        problems.append(f"TMOUT is set above {limit} s or to 0 in {sorted(values)}")
    elif not readonly:
        problems.append("TMOUT is not read-only: a user can switch it off")
    # The effective state: what a login shell gets once the profiles have run.
    shell = host.run(LOGIN_SHELL_TMOUT)
    evidence["login_shell"] = (shell.stdout.strip() or shell.stderr.strip())[:200]
    declared = _DECLARED.search(shell.stdout)
    if shell.rc != 0 and declared is None:
        raise EvidenceError(
            f"cannot start a login shell to read TMOUT (exit {shell.rc}): "
            f"{shell.stderr.strip()[:200]}"
        )
    if declared is None or not declared.group(2):
        problems.append("a login shell has no TMOUT: the profiles that set it are not run")
    else:
        flags, value = declared.group(1), int(declared.group(2))
        if value == 0 or value > limit:
            problems.append(f"a login shell has TMOUT={value} (1 to {limit} s)")
        elif "r" not in flags:
            problems.append("TMOUT is not read-only in a login shell: a user can switch it off")
    conclude(problems, sshd.unknown)


@rule("IDN-011")
def test_idn_011(sshd: SshdView, evidence: dict[str, Any]) -> None:
    """No account can log in over SSH without a second factor."""
    _sshd_ok(sshd, evidence)
    exempt = [ctx for ctx in [sshd.global_, *sshd.contexts] if not ctx.needs_second_factor()]
    evidence["recorded_exemptions"] = sshd.exemptions
    evidence["single_factor"] = [_why_single_factor(ctx) for ctx in exempt]
    problems = []
    if exempt:
        problems.append(
            "accounts that log in without a second factor: "
            + "; ".join(_why_single_factor(ctx) for ctx in exempt[:6])
            + (f" (and {len(exempt) - 6} more)" if len(exempt) > 6 else "")
        )
    conclude(problems, sshd.unknown)


# --- Data Fabric (MapR) ---------------------------------------------------------------------

MAPR_FILES = {
    "maprserverticket": 0o600,
    "cldb.key": 0o600,
    "ssl_keystore": 0o400,
    "ssl_keystore.p12": 0o400,
    "ssl_keystore.pem": 0o400,
    "ssl_truststore": 0o444,
    "ssl_truststore.p12": 0o444,
    "ssl_truststore.pem": 0o444,
    "dare.master.key": 0o600,
    "mapr.keytab": 0o600,
}


@rule("IDN-012")
def test_idn_012(host: Any, evidence: dict[str, Any]) -> None:
    """The Data Fabric security files are owned by mapr with the documented modes."""
    names = " ".join(shlex.quote(f"{MAPR_CONF}/{n}") for n in MAPR_FILES)
    out = host.run(
        "sh -c %s", f'for f in {names}; do [ -e "$f" ] && stat -c \'%n %U %G %a\' "$f"; done; true'
    )
    found = {}
    for line in out.stdout.splitlines():
        path, owner, group, mode = line.rsplit(" ", 3)
        found[path.rsplit("/", 1)[1]] = (owner, group, int(mode, 8))
    evidence["files"] = {n: f"{o}:{g} {m:04o}" for n, (o, g, m) in sorted(found.items())}
    problems = []
    if "maprserverticket" not in found:
        problems.append(f"{MAPR_CONF}/maprserverticket is missing: the node is not a secure server")
    for name, (owner, group, mode) in sorted(found.items()):
        want = MAPR_FILES[name]
        wrong_mode = (
            mode != want if want == 0o444 else bool(mode & ~want & 0o7777) or not mode & 0o400
        )
        if (owner, group) != ("mapr", "mapr") or wrong_mode:
            problems.append(f"{name} is {owner}:{group} {mode:04o} (mapr:mapr {want:04o})")
    _require(problems)


@rule("IDN-013")
def test_idn_013(host: Any, evidence: dict[str, Any]) -> None:
    """The cluster runs secured: every line of mapr-clusters.conf says secure=true."""
    path = f"{MAPR_CONF}/mapr-clusters.conf"
    text = read_files(host, path).get(path)
    assert text is not None, f"{path} does not exist"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    evidence["clusters"] = lines
    assert lines, f"{path} names no cluster"
    insecure = [ln.split()[0] for ln in lines if "secure=true" not in ln.split()]
    assert not insecure, f"clusters not secured (secure=true missing): {', '.join(insecure)}"


@rule("IDN-014")
def test_idn_014(host: Any, pam_files: dict[str, str], evidence: dict[str, Any]) -> None:
    """mapr.login.conf authenticates with mapr.keytab; jpamLogin's PAM services ask for no code."""
    path = f"{MAPR_CONF}/mapr.login.conf"
    text = read_files(host, path).get(path)
    assert text is not None, f"{path} does not exist"
    entries = parse_jaas(text)
    keytab = f"{MAPR_CONF}/mapr.keytab"
    in_keytab = {e.principal for e in parse_klist(host.run("klist -k -e %s", keytab).stdout)}
    evidence["keytab_principals"] = sorted(in_keytab)
    problems = []
    for name, prefix in (("MAPR_SERVER_KERBEROS", "mapr/"), ("MAPR_WEBSERVER_KERBEROS", "HTTP/")):
        krb = [m for m in entries.get(name, []) if m.cls.endswith("Krb5LoginModule")]
        if not krb:
            problems.append(f"{name} has no Krb5LoginModule")
            continue
        opts = krb[0].options
        evidence[name] = {k: opts.get(k) for k in ("keyTab", "principal", "useKeyTab")}
        principal = opts.get("principal", "")
        if opts.get("keyTab") != keytab or opts.get("useKeyTab", "").lower() != "true":
            problems.append(f"{name} does not use {keytab}")
        if not principal.startswith(prefix):
            problems.append(f"{name} principal {principal!r} is not {prefix}...")
        elif not any(p == principal or p.split("@")[0] == principal for p in in_keytab):
            problems.append(f"{name} principal {principal} is not in {keytab}")
    services = [
        m.options.get("serviceName", "")
        for m in entries.get("jpamLogin", [])
        if m.cls.endswith("JpamLoginModule")
    ]
    evidence["jpamLogin services"] = services
    if not services:
        problems.append("jpamLogin names no PAM service")
    for service in services:
        lines = _stack(pam_files, service, problems, [])
        if any(line.name == "pam_oath" for line in lines):
            problems.append(
                f"jpamLogin uses PAM service {service}, which asks for a one-time code the Java "
                "login cannot answer"
            )
    _require(problems)
