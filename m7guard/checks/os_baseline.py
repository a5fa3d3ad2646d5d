"""Operating-system baseline checks: the OSB-* rules of policies/rules/os_baseline/.

Each check reads the state the system acts on: login.defs and /etc/shadow as the shadow
tools read them, `useradd -D`, pam_pwquality's configuration files in their order and its
arguments in the PAM stack, `modprobe -n -v` and /proc/modules, pam_limits' files, systemd's
DefaultLimitCORE and `systemd-analyze cat-config` for systemd-coredump, `sshd -T`
(support/sshd.py, through the identity checks' fixture), `systemctl show`, `apt-cache policy`
and `apt-config dump`, `dpkg --verify`, `apt-get -s dist-upgrade` beside os_baseline's record
of pending security updates, and a bounded `find` of the local file systems. No
password hash leaves the node: /etc/shadow is read through awk, which prints whether an
account's password is usable, never the hash.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from m7guard.checks import rule
from m7guard.checks.kerberos_mfa import SshdView, _sshd_ok
from m7guard.checks.kerberos_mfa import sshd as sshd  # the fixture, shared
from m7guard.checks.support.files import new_marker, read_files
from m7guard.checks.support.verdict import EvidenceError, conclude, not_applicable

LOGIN_DEFS = "/etc/login.defs"
PWQUALITY = "/etc/security/pwquality.conf"
PWQUALITY_DIR = "/etc/security/pwquality.conf.d"
COMMON_PASSWORD = "/etc/pam.d/common-password"  # noqa: S105 (a path)
LIMITS = "/etc/security/limits.conf"
LIMITS_DIR = "/etc/security/limits.d"
BANNERS = ("/etc/issue", "/etc/issue.net", "/etc/motd")
SSHD_BANNER = "/etc/issue.net"
MOTD_SCRIPTS = "/etc/update-motd.d"
CRON_PATHS = ("/etc/crontab", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
              "/etc/cron.monthly", "/etc/cron.d")
CRON_ALLOW = "/etc/cron.allow"
CRON_DAEMON = "/usr/sbin/cron"
# (path, whether it holds password hashes)
ACCOUNT_FILES = (("/etc/passwd", False), ("/etc/passwd-", False), ("/etc/group", False),
                 ("/etc/group-", False), ("/etc/shadow", True), ("/etc/shadow-", True),
                 ("/etc/gshadow", True), ("/etc/gshadow-", True))
NOLOGIN = frozenset({"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"})
NO_LOAD = re.compile(r"^install\s+(/usr)?/bin/(false|true)\s*$")
VERIFY_UNIT = "m7guard-package-verify"
# The world-writable scan (OSB-013): seconds per file system, and the most lines it lists.
SCAN_SECONDS = 300
SCAN_LINES = 20000
# One line of `dpkg --verify`: the attribute string (or "missing"), a "c" for a
# configuration file, the path.
_VERIFY_LINE = re.compile(r"^(\S+)\s+(c\s+)?(/.*)$")
_GETTY_ESCAPE = re.compile(r"\\[mrsv]")
# awk over /etc/shadow: name, whether the password is usable (never the hash), and the
# aging fields min, max, warn, inactive.
SHADOW_AGING = ("awk -F: 'BEGIN { OFS = \":\" } NF >= 8 { u = ($2 != \"\" && $2 !~ /^[!*]/) "
                "? \"usable\" : \"locked\"; print $1, u, $4, $5, $6, $7 }' /etc/shadow")


def _run(host: Any, command: str) -> Any:
    return host.run("sh -c %s", command)


def _keywords(text: str) -> dict[str, str]:
    """KEY VALUE lines (login.defs): the last assignment of each key, comments left out."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            values[words[0]] = words[1]
    return values


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _unit(host: Any, unit: str) -> dict[str, str]:
    out = _run(host, f"systemctl show {shlex.quote(unit)} "
                     "--property=LoadState,ActiveState,UnitFileState").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _unit_problems(host: Any, unit: str, evidence: dict[str, Any]) -> list[str]:
    state = _unit(host, unit)
    evidence.setdefault("units", {})[unit] = state
    if not state:
        raise EvidenceError(f"systemctl show {unit} printed nothing")
    if state.get("LoadState") != "loaded":
        return [f"{unit} does not exist ({state.get('LoadState')})"]
    if state.get("ActiveState") != "active" or state.get("UnitFileState") != "enabled":
        return [f"{unit} is {state.get('ActiveState')} and {state.get('UnitFileState')}: it must "
                "be active and enabled"]
    return []


def _stats(host: Any, paths: tuple[str, ...]) -> dict[str, tuple[str, str, int, str]]:
    """(owner, group, mode, kind) of each path that exists."""
    m = new_marker()
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = _run(host, f"for p in {quoted}; do [ -e \"$p\" ] || continue; "
                     f"stat -c '%U %G %a %F|%n' \"$p\"; done; echo '{m}'").stdout
    if m not in out:
        raise EvidenceError("stat of " + ", ".join(paths) + " did not complete")
    found = {}
    for line in out.split(m)[0].splitlines():
        head, _, path = line.partition("|")
        owner, group, mode, kind = head.split(" ", 3)
        found[path] = (owner, group, int(mode, 8), kind)
    return found


def _shadow_aging(host: Any) -> list[list[str]]:
    result = _run(host, SHADOW_AGING)
    rows = [line.split(":") for line in result.stdout.splitlines() if line.count(":") == 5]
    if result.rc != 0 or not rows:
        raise EvidenceError(f"/etc/shadow could not be read (exit {result.rc}): "
                            f"{result.stderr.strip()[:200]}")
    return rows


def _passwd(host: Any) -> tuple[int, list[list[str]]]:
    """UID_MIN of login.defs (1000 where unset: the shadow tools' default) and the accounts
    (getent passwd) as field lists."""
    defs = _keywords(read_files(host, LOGIN_DEFS).get(LOGIN_DEFS, ""))
    passwd = _run(host, "getent passwd")
    rows = [line.split(":") for line in passwd.stdout.splitlines() if line.count(":") == 6]
    if passwd.rc != 0 or not rows:
        raise EvidenceError(f"getent passwd failed (exit {passwd.rc})")
    return _int(defs.get("UID_MIN")) or 1000, rows


# --- accounts and passwords ------------------------------------------------------------------


@rule("OSB-001")
def test_osb_001(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Passwords age, are hashed strongly, and new files are private by default."""
    files = read_files(host, LOGIN_DEFS)
    if LOGIN_DEFS not in files:
        raise EvidenceError(f"{LOGIN_DEFS} does not exist or cannot be read")
    defs = _keywords(files[LOGIN_DEFS])
    keys = ("PASS_MAX_DAYS", "PASS_MIN_DAYS", "PASS_WARN_AGE", "ENCRYPT_METHOD",
            "YESCRYPT_COST_FACTOR", "SHA_CRYPT_MIN_ROUNDS", "UMASK")
    evidence["login_defs"] = {k: defs.get(k) for k in keys}
    problems = []
    max_days, min_days, warn = (_int(defs.get(k)) for k in keys[:3])
    if max_days is None or not 0 < max_days <= params["max_days"]:
        problems.append(f"PASS_MAX_DAYS is {defs.get('PASS_MAX_DAYS')}: 1 to {params['max_days']}")
    if min_days is None or min_days < params["min_days"]:
        problems.append(f"PASS_MIN_DAYS is {defs.get('PASS_MIN_DAYS')}: {params['min_days']} or "
                        "more")
    if warn is None or warn < params["warn_days"]:
        problems.append(f"PASS_WARN_AGE is {defs.get('PASS_WARN_AGE')}: {params['warn_days']} or "
                        "more")
    method = defs.get("ENCRYPT_METHOD", "DES")
    if method not in params["hash_methods"]:
        problems.append(f"ENCRYPT_METHOD is {method}: one of {', '.join(params['hash_methods'])}")
    elif method == "YESCRYPT":
        cost = _int(defs.get("YESCRYPT_COST_FACTOR", "5"))
        if cost is None or cost < params["min_yescrypt_cost"]:
            problems.append(f"YESCRYPT_COST_FACTOR is {defs.get('YESCRYPT_COST_FACTOR')}: "
                            f"{params['min_yescrypt_cost']} or more")
    elif method == "SHA512":
        rounds = _int(defs.get("SHA_CRYPT_MIN_ROUNDS", "5000"))
        if rounds is None or rounds < params["min_sha_rounds"]:
            problems.append(f"SHA_CRYPT_MIN_ROUNDS is {defs.get('SHA_CRYPT_MIN_ROUNDS', '5000')}: "
                            f"{params['min_sha_rounds']} or more")
    umask = defs.get("UMASK", "022")
    if umask.zfill(4) not in {u.zfill(4) for u in params["allowed_umasks"]}:
        problems.append(f"UMASK is {umask}: one of {', '.join(params['allowed_umasks'])}")
    usable = [row for row in _shadow_aging(host) if row[1] == "usable"]
    evidence["accounts_with_password"] = [row[0] for row in usable]
    for name, _, mindays, maxdays, warndays, _inactive in usable:
        mx, mn, wn = _int(maxdays), _int(mindays), _int(warndays)
        if mx is None or not 0 < mx <= params["max_days"] or mn is None \
                or mn < params["min_days"] or wn is None or wn < params["warn_days"]:
            problems.append(f"account {name}: aging min {mindays or '-'}, max {maxdays or '-'}, "
                            f"warn {warndays or '-'} (login.defs applies only to new accounts)")
    conclude(problems)


def _pwquality_settings(files: dict[str, str]) -> dict[str, str]:
    """pwquality.conf, then the conf.d files in name order: the last value of each key."""
    order = [PWQUALITY, *sorted(p for p in files if p != PWQUALITY)]
    settings: dict[str, str] = {}
    for path in order:
        for line in files.get(path, "").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key, eq, value = line.partition("=")
            settings[key.strip()] = value.strip() if eq else ""
    return settings


@rule("OSB-002")
def test_osb_002(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """New passwords must pass a quality policy."""
    files = read_files(host, f"{COMMON_PASSWORD} {PWQUALITY} {PWQUALITY_DIR}/*.conf")
    if COMMON_PASSWORD not in files:
        raise EvidenceError(f"{COMMON_PASSWORD} does not exist or cannot be read")
    stack = []
    for line in files.pop(COMMON_PASSWORD).splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "password":
            stack.append(words)
    evidence["password_stack"] = [" ".join(w) for w in stack]
    problems = []
    modules = [next((w for w in words[2:] if w.endswith(".so")), "") for words in stack]
    quality = next((i for i, m in enumerate(modules) if m.endswith("pam_pwquality.so")), None)
    unix = next((i for i, m in enumerate(modules) if m.endswith("pam_unix.so")), None)
    settings = _pwquality_settings(files)
    if quality is None:
        problems.append(f"pam_pwquality is not in the password stack of {COMMON_PASSWORD}")
    else:
        control = stack[quality][1]
        if control not in ("requisite", "required") and not control.startswith("["):
            problems.append(f"pam_pwquality is {control}: a failed check must stop the change "
                            "(requisite or required)")
        if unix is not None and unix < quality:
            problems.append("pam_pwquality comes after pam_unix: the password is set unchecked")
        # the module's own arguments override the files
        for arg in stack[quality][stack[quality].index(modules[quality]) + 1:]:
            key, eq, value = arg.partition("=")
            if key in ("retry", "local_users_only", "use_authtok"):
                continue
            settings[key] = value if eq else ""
        installed = _run(host, "dpkg-query -W -f='${db:Status-Status}' libpam-pwquality")
        if installed.stdout.strip() != "installed":
            problems.append("libpam-pwquality is not installed: the PAM stack names a module "
                            "that does not exist")
    evidence["policy"] = settings

    def value(key: str, default: int) -> int:
        parsed = _int(settings.get(key))
        return default if parsed is None else parsed

    minlen = value("minlen", 8)
    classes = max(value("minclass", 0),
                  sum(value(c, 0) < 0 for c in ("dcredit", "ucredit", "lcredit", "ocredit")))
    if minlen < params["min_length"]:
        problems.append(f"minlen is {minlen}: {params['min_length']} or more")
    if classes < params["min_classes"]:
        problems.append(f"{classes} character classes required: {params['min_classes']} or more")
    if value("difok", 1) < params["min_difok"]:
        problems.append(f"difok is {value('difok', 1)}: {params['min_difok']} or more")
    for key in ("maxrepeat", "maxsequence"):
        if not 0 < value(key, 0) <= params["max_repeat"]:
            problems.append(f"{key} is {value(key, 0)}: 1 to {params['max_repeat']}")
    if value("dictcheck", 1) == 0:
        problems.append("dictcheck is 0: no dictionary check")
    if value("enforcing", 1) == 0:
        problems.append("enforcing is 0: a weak password is only warned about")
    if "enforce_for_root" not in settings:
        problems.append("enforce_for_root is not set: root may set any password")
    conclude(problems)


@rule("OSB-003")
def test_osb_003(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Inactive accounts lock and system accounts cannot log in."""
    limit = params["max_inactive_days"]
    problems = []
    defaults = _run(host, "useradd -D")
    found = re.search(r"^INACTIVE=(-?\d+)$", defaults.stdout, re.MULTILINE)
    if defaults.rc != 0 or found is None:
        raise EvidenceError(f"useradd -D printed no INACTIVE (exit {defaults.rc})")
    inactive = int(found.group(1))
    evidence["useradd_inactive"] = inactive
    if not 0 <= inactive <= limit:
        problems.append(f"new accounts: INACTIVE={inactive} (0 to {limit} days)")
    for name, use, *_, days in _shadow_aging(host):
        if use == "usable" and not 0 <= (_int(days) if days else -1) <= limit:
            problems.append(f"account {name}: no lock within {limit} days of expiry "
                            f"(inactive {days or 'unset'})")
    uid_min, rows = _passwd(host)
    exempt = set(params["shell_exempt"])
    shells = sorted(f"{r[0]} ({r[6]})" for r in rows
                    if r[2].isdigit() and int(r[2]) < uid_min and r[0] not in exempt
                    and r[6] not in NOLOGIN)
    evidence.update(uid_min=uid_min, system_accounts_with_shell=shells)
    if shells:
        problems.append("system accounts with a login shell: " + ", ".join(shells))
    conclude(problems)


# --- kernel modules --------------------------------------------------------------------------


@rule("OSB-004")
def test_osb_004(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Uncommon network protocols, filesystems and removable storage cannot be loaded."""
    m = new_marker()
    names = " ".join(shlex.quote(n) for n in params["blocked"])
    out = _run(host, f"for n in {names}; do echo \"{m} $n\"; modprobe -n -v \"$n\" 2>&1; done; "
                     f"echo '{m} blacklist'; modprobe --showconfig 2>&1 | grep '^blacklist '; "
                     f"echo '{m} loaded'; cut -d' ' -f1 /proc/modules; echo '{m} end'").stdout
    sections: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith(m + " "):
            current = line[len(m) + 1:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line.strip())
    if "end" not in sections or not sections.get("loaded"):
        raise EvidenceError("modprobe and /proc/modules could not be read")

    def norm(name: str) -> str:
        return name.replace("-", "_")

    blacklisted = {norm(line.split()[1]) for line in sections["blacklist"]
                   if len(line.split()) == 2}
    loaded = {norm(name) for name in sections["loaded"] if name}
    problems, resolved = [], {}
    for name in params["blocked"]:
        lines = [line for line in sections.get(name, []) if line]
        resolved[name] = lines
        # modprobe lists the dependencies first (it would still load those) and the module
        # itself last: its own line must be an install command that loads nothing, and no
        # line may load its own file
        own = re.compile(rf"^insmod\s+\S*/{re.escape(norm(name))}\.ko(\.\w+)?\b")
        if not lines or not NO_LOAD.match(lines[-1]) \
                or any(own.match(norm(line)) for line in lines):
            problems.append(f"{name} can be loaded (modprobe -n -v: "
                            f"{'; '.join(lines)[-160:] or 'nothing'})")
        if norm(name) not in blacklisted:
            problems.append(f"{name} is not blacklisted")
        if norm(name) in loaded:
            problems.append(f"{name} is loaded")
    evidence.update(modprobe=resolved, loaded_blocked=sorted(
        n for n in params["blocked"] if norm(n) in loaded))
    conclude(problems)


# --- core dumps ------------------------------------------------------------------------------


def effective_core_limits(files: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The hard core limit each pam_limits domain ends with, and the entries read, from
    (path, text) in the order pam_limits reads them: limits.conf, then limits.d/*.conf by name.
    Among entries for one domain the later wins ("-" sets hard and soft); a user's entry beats
    a group's and `*` when a session starts, and `*` never applies to root (limits.conf(5)), so
    each domain is judged on its own."""
    final: dict[str, str] = {}
    entries: list[str] = []
    for path, text in files:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) == 4 and words[2] == "core":
                domain, kind, _, value = words
                entries.append(f"{path}: {' '.join(words)}")
                if kind in ("hard", "-"):
                    final[domain] = value
    return final, entries


@rule("OSB-005")
def test_osb_005(host: Any, evidence: dict[str, Any]) -> None:
    """No process leaves a core dump."""
    files = read_files(host, f"{LIMITS} {LIMITS_DIR}/*.conf")
    order = [LIMITS, *sorted(p for p in files if p != LIMITS)]
    final, entries = effective_core_limits([(p, files.get(p, "")) for p in order])
    evidence["core_limits"] = entries
    evidence["effective_hard_core"] = final
    problems = [f"{domain} may dump {value} (hard core, after every file)"
                for domain, value in sorted(final.items()) if value != "0"]
    if final.get("*") is None:
        problems.append("no `* hard core 0` entry in the pam_limits files")
    cat = _run(host, "systemd-analyze cat-config systemd/coredump.conf")
    if cat.rc != 0:
        raise EvidenceError(f"systemd-analyze cat-config systemd/coredump.conf failed "
                            f"(exit {cat.rc}): {cat.stderr.strip()[:200]}")
    settings: dict[str, str] = {}
    for line in cat.stdout.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and not key.startswith(("#", ";")):
            settings[key.strip()] = value.strip()
    manager = _run(host, "systemctl show --property=DefaultLimitCORE")
    found = re.search(r"^DefaultLimitCORE=(\S+)$", manager.stdout, re.MULTILINE)
    if found is None:
        raise EvidenceError(f"systemctl show printed no DefaultLimitCORE (exit {manager.rc})")
    evidence["service_default_core_limit"] = found.group(1)
    if found.group(1) != "0":
        problems.append(f"services may dump {found.group(1)} (systemd DefaultLimitCORE)")
    evidence["coredump"] = {k: settings.get(k) for k in ("Storage", "ProcessSizeMax")}
    if settings.get("Storage", "external") != "none":
        problems.append(f"systemd-coredump Storage={settings.get('Storage', 'external')}: none")
    if settings.get("ProcessSizeMax") != "0":
        problems.append("systemd-coredump ProcessSizeMax="
                        f"{settings.get('ProcessSizeMax', 'unset')}: 0")
    conclude(problems)


# --- sshd and banners ------------------------------------------------------------------------

FORWARDING = ("allowtcpforwarding", "allowagentforwarding", "allowstreamlocalforwarding",
              "x11forwarding", "permittunnel")


@rule("OSB-006")
def test_osb_006(sshd: SshdView, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """sshd forwards nothing, limits sessions and logs each key used."""
    _sshd_ok(sshd, evidence)
    problems = []
    g = sshd.global_
    evidence["global"] = {k: g.get(k) for k in ("disableforwarding", *FORWARDING, "gatewayports",
                                                 "compression", "tcpkeepalive", "maxsessions",
                                                 "loglevel")}
    for ctx in [g, *sshd.contexts]:
        where = ctx.label()
        on = [k for k in FORWARDING if ctx.get(k) not in ("no", "")]
        if ctx.get("disableforwarding") != "yes" and on:
            problems.append(f"{where}: forwarding allowed ({', '.join(on)})")
        if ctx.get("gatewayports") not in ("no", ""):
            problems.append(f"{where}: gatewayports {ctx.get('gatewayports')}")
        if ctx.get("compression") not in ("no", ""):
            problems.append(f"{where}: compression {ctx.get('compression')}")
        if ctx.get("tcpkeepalive") != "no":
            problems.append(f"{where}: tcpkeepalive {ctx.get('tcpkeepalive')}")
        sessions = _int(ctx.get("maxsessions"))
        if sessions is None or sessions > params["max_sessions"]:
            problems.append(f"{where}: maxsessions {ctx.get('maxsessions')} (at most "
                            f"{params['max_sessions']})")
        if ctx.get("loglevel").upper() != "VERBOSE":
            problems.append(f"{where}: loglevel {ctx.get('loglevel')} (VERBOSE)")
        if problems:
            break
    conclude(problems, sshd.unknown)


@rule("OSB-007")
def test_osb_007(host: Any, sshd: SshdView, evidence: dict[str, Any]) -> None:
    """Login banners warn and reveal nothing about the system."""
    _sshd_ok(sshd, evidence)
    files = read_files(host, " ".join(BANNERS) + " /etc/os-release")
    release = dict(line.split("=", 1) for line in files.get("/etc/os-release", "").splitlines()
                   if "=" in line)
    names = {v.strip('"').split()[0].lower() for k, v in release.items()
             if k in ("ID", "NAME") and v.strip('"')}
    if not names:
        raise EvidenceError("/etc/os-release names no system: the banners cannot be judged")
    kernel = _run(host, "uname -r").stdout.strip()
    stats = _stats(host, BANNERS)
    problems = []
    for path in BANNERS:
        text = files.get(path)
        if text is None:
            problems.append(f"{path} does not exist")
            continue
        if not text.strip():
            problems.append(f"{path} is empty")
        if _GETTY_ESCAPE.search(text):
            problems.append(f"{path} prints the system (getty escape "
                            f"{_GETTY_ESCAPE.search(text).group(0)})")
        words = set(re.findall(r"[a-z0-9/._-]+", text.lower()))
        if found := sorted(names & words) + ([kernel] if kernel and kernel in text else []):
            problems.append(f"{path} names the system ({', '.join(found)})")
        owner, _, mode, _ = stats.get(path, ("?", "?", 0o777, ""))
        if owner != "root" or mode & 0o022:
            problems.append(f"{path} is {owner}, mode {mode:o}: root's, writable by root alone")
    scripts = _run(host, f"find {MOTD_SCRIPTS} -maxdepth 1 -type f -perm /111 2>/dev/null")
    running = sorted(scripts.stdout.split())
    evidence.update(banner=sshd.global_.get("banner"), motd_scripts=running)
    if running:
        problems.append("scripts print the system at login: " + ", ".join(running))
    if sshd.global_.get("banner") != SSHD_BANNER:
        problems.append(f"sshd shows {sshd.global_.get('banner') or 'no banner'} before login, "
                        f"not {SSHD_BANNER}")
    conclude(problems, sshd.unknown)


# --- file permissions ------------------------------------------------------------------------


@rule("OSB-008")
def test_osb_008(host: Any, evidence: dict[str, Any]) -> None:
    """Only root reads or changes the scheduled jobs, and only listed users use crontab."""
    stats = _stats(host, (CRON_DAEMON, *CRON_PATHS, CRON_ALLOW))
    if CRON_DAEMON not in stats:
        not_applicable(f"cron is not installed ({CRON_DAEMON} does not exist): no job it runs")
    evidence["modes"] = {p: f"{s[0]}:{s[1]} {s[2]:o}" for p, s in stats.items()}
    problems = []
    for path in CRON_PATHS:
        if path not in stats:
            continue
        owner, group, mode, _ = stats[path]
        if owner != "root" or group != "root" or mode & 0o077:
            problems.append(f"{path} is {owner}:{group}, mode {mode:o}: root's, closed to others")
    if CRON_ALLOW not in stats:
        problems.append(f"{CRON_ALLOW} does not exist: every user may use crontab")
    else:
        owner, _, mode, _ = stats[CRON_ALLOW]
        if owner != "root" or mode & 0o037:
            problems.append(f"{CRON_ALLOW} is {owner}, mode {mode:o}: root's, at most 0640")
    conclude(problems)


@rule("OSB-009")
def test_osb_009(host: Any, evidence: dict[str, Any]) -> None:
    """The account databases are writable only by root and the hashes readable only by it."""
    stats = _stats(host, tuple(p for p, _ in ACCOUNT_FILES))
    evidence["modes"] = {p: f"{s[0]}:{s[1]} {s[2]:o}" for p, s in stats.items()}
    problems, missing = [], []
    for path, secret in ACCOUNT_FILES:
        if path not in stats:
            if not path.endswith("-"):
                missing.append(f"{path} does not exist")
            continue
        owner, group, mode, _ = stats[path]
        if secret and (owner != "root" or group not in ("root", "shadow") or mode & 0o137):
            problems.append(f"{path} is {owner}:{group}, mode {mode:o}: root's, readable by the "
                            "shadow group at most")
        elif not secret and (owner != "root" or mode & 0o022):
            problems.append(f"{path} is {owner}:{group}, mode {mode:o}: writable by root alone")
    conclude(problems, missing)


# --- accounting, integrity, updates ----------------------------------------------------------


@rule("OSB-010")
def test_osb_010(host: Any, evidence: dict[str, Any]) -> None:
    """Process accounting and system activity collection run."""
    problems = _unit_problems(host, "acct.service", evidence)
    problems += _unit_problems(host, "sysstat-collect.timer", evidence)
    files = read_files(host, "/etc/default/sysstat")
    enabled = re.findall(r"^\s*ENABLED=\"?([a-z]*)\"?\s*$", files.get("/etc/default/sysstat", ""),
                         re.MULTILINE)
    evidence["sysstat_enabled"] = enabled[-1] if enabled else None
    if not enabled or enabled[-1] != "true":
        problems.append("sysstat does not collect (/etc/default/sysstat ENABLED is not \"true\")")
    pacct = _stats(host, ("/var/log/account/pacct",))
    if "/var/log/account/pacct" not in pacct:
        problems.append("/var/log/account/pacct does not exist: no process is recorded")
    conclude(problems)


@rule("OSB-011")
def test_osb_011(host: Any, evidence: dict[str, Any]) -> None:
    """Installed packages are verified on a schedule and verify now."""
    problems = _unit_problems(host, f"{VERIFY_UNIT}.timer", evidence)
    exec_start = _run(host, f"systemctl show {VERIFY_UNIT}.service --property=ExecStart").stdout
    if "dpkg --verify" not in exec_start:
        problems.append(f"{VERIFY_UNIT}.service does not run dpkg --verify")
    m = new_marker()
    verify = _run(host, f"dpkg --verify; echo '{m}' $?")
    if m not in verify.stdout:
        raise EvidenceError(f"dpkg --verify did not complete: {verify.stderr.strip()[:200]}")
    changed, unknown = [], []
    for line in verify.stdout.split(m)[0].splitlines():
        if not line.strip():
            continue
        parsed = _VERIFY_LINE.match(line.strip())
        if parsed is None:
            unknown.append(f"dpkg --verify printed {line.strip()[:120]!r}")
        elif not parsed.group(2):
            changed.append(f"{parsed.group(3)} ({parsed.group(1)})")
    evidence["changed_package_files"] = changed[:50]
    if changed:
        problems.append(f"{len(changed)} package files changed or missing: "
                        + ", ".join(changed[:10]))
    conclude(problems, unknown)


@rule("OSB-012")
def test_osb_012(host: Any, evidence: dict[str, Any]) -> None:
    """Security updates come from the release's security suite and install unattended."""
    release = dict(line.split("=", 1) for line in
                   read_files(host, "/etc/os-release").get("/etc/os-release", "").splitlines()
                   if "=" in line)
    codename = release.get("VERSION_CODENAME", "").strip('"')
    if not codename:
        raise EvidenceError("/etc/os-release has no VERSION_CODENAME")
    problems = []
    policy = _run(host, "apt-cache policy")
    if policy.rc != 0:
        raise EvidenceError(f"apt-cache policy failed (exit {policy.rc})")
    suites = sorted(set(re.findall(r"\bn=([^,\s]+)", policy.stdout)))
    evidence["suites"] = suites
    if f"{codename}-security" not in suites:
        problems.append(f"apt's lists hold no {codename}-security suite")
    installed = _run(host, "dpkg-query -W -f='${db:Status-Status}' unattended-upgrades")
    if installed.stdout.strip() != "installed":
        problems.append("unattended-upgrades is not installed")
    dump = _run(host, "apt-config dump")
    if dump.rc != 0:
        raise EvidenceError(f"apt-config dump failed (exit {dump.rc})")
    config: dict[str, list[str]] = {}
    for line in dump.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, []).append(value.rstrip(";").strip('"'))
    periodic = {k: (config.get(f"APT::Periodic::{k}") or [""])[-1]
                for k in ("Update-Package-Lists", "Unattended-Upgrade")}
    origins = [v for k in ("Unattended-Upgrade::Origins-Pattern::",
                           "Unattended-Upgrade::Allowed-Origins::") for v in config.get(k, [])]
    evidence.update(periodic=periodic, origins=origins)
    for key, value in periodic.items():
        if value != "1":
            problems.append(f"APT::Periodic::{key} is {value or 'unset'}: \"1\" (daily)")
    if not any("security" in o.lower() for o in origins):
        problems.append("unattended-upgrades takes nothing from the security suite "
                        "(Origins-Pattern)")
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        problems += _unit_problems(host, timer, evidence)
    conclude(problems)


# --- pending security updates ----------------------------------------------------------------

# os_baseline's recorder, its record and the simulation both run (OSB-014)
PENDING_RECORDER = "/usr/local/sbin/m7guard-security-pending"
PENDING_RECORD = "/var/lib/m7guard/security-pending"
# Dir::Log::Planner: a check changes nothing; as root, apt-get -s would write
# /var/log/apt/eipp.log.xz (readable by everyone, which AUD-006 fails)
SIMULATE_UPGRADE = ("LC_ALL=C apt-get -s -q -o Debug::NoLocking=1 -o Dir::Log::Planner=/dev/null "
                    "dist-upgrade")
# `Inst name [installed] (candidate Label:Version/Suite[, ...] [arch])...`
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ([^\[]*?) ?\[[^\]]*\]\)")
DAY = 86400


def security_pending(simulation: str) -> dict[str, str]:
    """{package: candidate version} of the updates from a security suite (label
    Debian-Security, or a suite named `*-security`) in `apt-get -s dist-upgrade`'s output."""
    found = {}
    for line in simulation.splitlines():
        match = _INST.match(line)
        if match is None:
            continue
        for release in match.group(3).split(","):
            label, _, rest = release.strip().partition(":")
            if label == "Debian-Security" or rest.rpartition("/")[2].endswith("-security"):
                found[match.group(1)] = match.group(2)
                break
    return found


def pending_record(text: str) -> tuple[int | None, dict[str, tuple[str, int]]]:
    """(when the recorder last ran, {package: (version, first seen)}) of the record; a line
    it cannot read is an EvidenceError."""
    updated, entries = None, {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if line.startswith("# updated ") and len(words) == 3 and words[2].isdigit():
            updated = int(words[2])
        elif line.strip() and not line.startswith("#"):
            if len(words) != 3 or not words[2].isdigit():
                raise EvidenceError(f"{PENDING_RECORD} line {number} is not 'package version "
                                    f"seconds': {line[:120]!r}")
            entries[words[0]] = (words[1], int(words[2]))
    return updated, entries


@rule("OSB-014")
def test_osb_014(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """No security update has been pending longer than the limit."""
    problems = []
    dump = _run(host, "apt-config dump")
    if dump.rc != 0:
        raise EvidenceError(f"apt-config dump failed (exit {dump.rc})")
    hooks = [line for line in dump.stdout.splitlines()
             if line.startswith("APT::Update::Post-Invoke-Success::")]
    if not any(PENDING_RECORDER in line for line in hooks):
        problems.append(f"apt does not run {PENDING_RECORDER} after an update "
                        "(APT::Update::Post-Invoke-Success): nothing keeps since when an update "
                        "is pending")
    m = new_marker()
    probe = _run(host, f"date +%s; echo '{m}'; stat -c '%Y %n' /var/lib/apt/lists/*_Packages "
                       f"2>/dev/null; echo '{m}'; {SIMULATE_UPGRADE}; echo '{m}' $?")
    parts = probe.stdout.split(m)
    if len(parts) != 4 or parts[3].strip() != "0":
        raise EvidenceError(f"{SIMULATE_UPGRADE} did not complete: {probe.stderr.strip()[-300:]}")
    now = int(parts[0].strip())
    lists = [int(line.split(" ", 1)[0]) for line in parts[1].splitlines() if line.strip()]
    if not lists:
        raise EvidenceError("/var/lib/apt/lists holds no package list: what is pending is "
                            "unknown")
    pending = security_pending(parts[2])
    text = read_files(host, PENDING_RECORD).get(PENDING_RECORD)
    if text is None:  # a fail when the hook is missing too: the record's absence follows
        conclude(problems, [f"{PENDING_RECORD} does not exist or cannot be read: since when "
                            f"the {len(pending)} pending security updates are pending is "
                            "unknown"])
    updated, entries = pending_record(text or "")
    evidence.update(record_updated=updated, lists_newest=max(lists), now=now)
    unknowns = []
    if updated is None:
        unknowns.append(f"{PENDING_RECORD} has no '# updated' line")
    elif updated + 60 < max(lists):
        unknowns.append(f"apt's lists changed after the record was last written "
                        f"({(max(lists) - updated) // 60} min later): the recorder did not run "
                        f"after the last update")
    elif now - updated > params["max_days_since_update"] * DAY:
        problems.append(f"apt's lists were last updated {(now - updated) // DAY} days ago "
                        f"(at most {params['max_days_since_update']}): updates published since "
                        "are not known to the node")
    ages = {}
    for package, version in sorted(pending.items()):
        recorded = entries.get(package)
        if recorded is None or recorded[0] != version:
            unknowns.append(f"{package} {version} is pending and the record has "
                            f"{'no entry' if recorded is None else recorded[0]}")
        elif recorded[1] > now + DAY:
            unknowns.append(f"{package}: first seen in the future ({recorded[1]}, now {now})")
        else:
            ages[package] = (version, max(0, now - recorded[1]) // DAY)
    evidence["pending_security"] = {p: f"{v}, {d} days" for p, (v, d) in list(ages.items())[:50]}
    late = [f"{p} {v} ({d} days)" for p, (v, d) in ages.items() if d > params["max_age_days"]]
    if late:
        problems.append(f"{len(late)} security updates pending more than "
                        f"{params['max_age_days']} days: " + ", ".join(late[:10]))
    conclude(problems, unknowns)


# --- world-writable files and home directories ----------------------------------------------


def _scan_script(skip: list[str], limit: int, marker: str) -> str:
    """World-writable directories without the sticky bit, and world-writable files whose
    directory has no sticky bit, on every local file system, each scanned without crossing
    into another (-xdev), the skipped paths pruned; one `d<TAB>path` or `f<TAB>path` line each,
    at most `limit`. A scan that fails or times out writes `<marker> failed` to stderr;
    `<marker> end` ends stdout."""
    prune = " -o ".join(f"-path {shlex.quote(p)}" for p in skip)
    return (f"for m in $(df --local --output=target -x tmpfs -x devtmpfs | tail -n +2); do "
            f"timeout {SCAN_SECONDS} find \"$m\" -xdev \\( {prune} \\) -prune -o -perm -0002 "
            f"\\( -type d ! -perm -1000 -printf 'd\\t.\\t%p\\n' -o -type f "
            f"-printf 'f\\t%h\\t%p\\n' \\) || echo \"{marker} failed $m $?\" >&2; done "
            f"| while IFS=\"$(printf '\\t')\" read -r k h p; do "
            f"if [ \"$k\" = d ] || [ ! -k \"$h\" ]; then printf '%s\\t%s\\n' \"$k\" \"$p\"; fi; "
            f"done | head -n {limit}; echo '{marker} end'")


@rule("OSB-013")
def test_osb_013(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """No file is writable by everyone outside sticky directories, and home directories are
    private."""
    m = new_marker()
    scan = _run(host, _scan_script(list(params["skip_paths"]), SCAN_LINES, m))
    if f"{m} end" not in scan.stdout or f"{m} failed" in scan.stderr:
        raise EvidenceError(f"the scan for world-writable files did not complete (timeout "
                            f"{SCAN_SECONDS} s a file system): {scan.stderr.strip()[-300:]}")
    lines = [line.split("\t", 1) for line in scan.stdout.split(m)[0].splitlines() if line]
    if len(lines) >= SCAN_LINES:
        raise EvidenceError(f"{SCAN_LINES} or more world-writable entries: the scan stopped "
                            "there, so what it did not list is unknown")
    problems = []
    found = [f"{path} ({'directory without the sticky bit' if kind == 'd' else 'file'})"
             for kind, path in lines]
    evidence["world_writable"] = found[: params["max_findings"]]
    if found:
        problems.append(f"{len(found)} world-writable: " + ", ".join(found[:10]))
    uid_min, rows = _passwd(host)
    people = {r[0]: r[5] for r in rows if r[2].isdigit() and int(r[2]) >= uid_min
              and r[6] not in NOLOGIN and r[0] != "nobody"}
    homes = _stats(host, tuple(sorted(set(people.values())))) if people else {}
    evidence["homes"] = {user: (f"{homes[h][0]} {homes[h][2]:o}" if h in homes else "missing")
                         for user, h in people.items()}
    for user, home in sorted(people.items()):
        if home not in homes:
            problems.append(f"{user}: home {home} does not exist")
            continue
        owner, _, mode, _ = homes[home]
        if owner != user or mode & 0o027:
            problems.append(f"{user}: home {home} is {owner}'s, mode {mode:o} (the user's, at "
                            "most 0750)")
    conclude(problems)
