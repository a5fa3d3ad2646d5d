"""Audit logging checks: the AUD-* rules of policies/rules/audit_logging/.

Each check reads the host's real state: the running daemons and the kernel's loaded rules,
not only the files on disk. The kernel audit rules, auditd itself and the event test belong
to the host kernel and are notapplicable on a container node (rule condition not_container);
they are proven on a node with its own kernel.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import time
from typing import Any

from m7guard.checks import rule
from m7guard.checks.support.audit_logging_parsers import (
    aide_summary,
    parse_forwards,
    parse_key_values,
    parse_rules,
    parse_status,
    parse_time_sources,
    parse_tracking,
    parse_unit_config,
    rule_keys,
    selected_sources,
)
from m7guard.checks.support.files import read_files
from m7guard.checks.support.snapshot import HostSnapshot
from m7guard.checks.support.verdict import EvidenceError, not_applicable


def _run(host: Any, command: str) -> Any:
    return host.run("sh -c %s", command)


def _read(host: Any, path: str) -> str | None:
    f = host.file(path)
    return f.content_string if f.exists else None


def _find_failed(result: Any) -> bool:
    """Whether a find did not list everything: a non-zero exit for another reason than files
    that vanished while it ran (a log rotated away is no file left unlisted)."""
    if result.rc == 0:
        return False
    errors = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return not errors or not all("No such file or directory" in ln for ln in errors)


def _unit(host: Any, unit: str) -> dict[str, str]:
    out = _run(host, f"systemctl show {shlex.quote(unit)} "
                     "--property=LoadState,ActiveState,UnitFileState,MainPID").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _unit_running(state: dict[str, str]) -> bool:
    return state.get("ActiveState") == "active" and state.get("UnitFileState") == "enabled"


def _service_problems(state: dict[str, str], unit: str, package: str) -> list[str]:
    """Why a service is not installed, running and enabled (empty when it is)."""
    if state.get("LoadState") != "loaded":
        return [f"{package} is not installed ({unit} not found)"]
    if not _unit_running(state):
        return [f"{unit} is {state.get('ActiveState')} and {state.get('UnitFileState')}; "
                "it must be active and enabled"]
    return []


@rule("AUD-001")
def test_aud_001(host: Any, evidence: dict[str, Any]) -> None:
    """auditd runs, starts at boot and is the kernel's audit daemon."""
    unit = _unit(host, "auditd.service")
    status_run = _run(host, "auditctl -s")
    status = parse_status(status_run.stdout)
    evidence.update({"unit": unit, "auditctl_status": status or status_run.stderr.strip()})
    failures = _service_problems(unit, "auditd.service", "auditd")
    if status_run.rc != 0:
        failures.append(f"auditctl -s failed: {status_run.stderr.strip() or status_run.stdout}")
    else:
        if status.get("enabled", "0").split()[0] not in ("1", "2"):
            failures.append(f"kernel auditing is off (enabled {status.get('enabled')})")
        if unit.get("MainPID", "0") in ("", "0") or status.get("pid") != unit.get("MainPID"):
            failures.append(f"the kernel sends audit records to pid {status.get('pid')}, not to "
                            f"auditd (pid {unit.get('MainPID')})")
    assert not failures, "; ".join(failures)


@rule("AUD-002")
def test_aud_002(host: Any, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """auditd.conf keeps records and acts before the disk fills."""
    path = params["config"]
    text = _read(host, path)
    if text is None:
        raise AssertionError(f"{path} does not exist (auditd is not installed)")
    conf = parse_key_values(text)
    evidence["auditd_conf"] = {k: conf.get(k) for k in (
        "write_logs", "log_file", "log_group", "max_log_file", "num_logs", "max_log_file_action",
        "space_left", "space_left_action", "admin_space_left", "admin_space_left_action",
        "disk_full_action", "disk_error_action")}
    failures = []
    if conf.get("write_logs", "yes").lower() != "yes":
        failures.append("write_logs is not yes: records are not written to disk")
    for key in ("max_log_file_action", "space_left_action", "admin_space_left_action",
                "disk_full_action", "disk_error_action"):
        allowed = [a.lower() for a in params[f"{key}_allowed"]]
        value = conf.get(key, "").lower()
        if value not in allowed:
            failures.append(f"{key} is {value or 'not set'}; allowed: {', '.join(allowed)}")
    try:
        space, admin = int(conf.get("space_left", "0")), int(conf.get("admin_space_left", "0"))
        size = int(conf.get("max_log_file", "0"))
    except ValueError:
        failures.append("space_left, admin_space_left and max_log_file must be numbers of MiB")
    else:
        if not space > admin > 0:
            failures.append(f"space_left ({space}) must be above admin_space_left ({admin}), "
                            "both above 0")
        if size < params["min_max_log_file_mb"]:
            failures.append(f"max_log_file is {size} MiB; at least "
                            f"{params['min_max_log_file_mb']} required")
    mode = host.file(path).mode
    evidence["config_mode"] = oct(mode)
    if mode & 0o027:
        failures.append(f"{path} has mode {oct(mode)}: group must not write, others no access")
    if host_snapshot.facts.container:
        evidence["auditctl_status"] = (
            f"not read: the audit subsystem belongs to the host kernel, not to this "
            f"{host_snapshot.facts.container} container (AUD-001 covers it on own-kernel nodes)"
        )
    else:
        failures += _auditd_in_effect(host, path, evidence)
    assert not failures, "; ".join(failures)


def _auditd_in_effect(host: Any, path: str, evidence: dict[str, Any]) -> list[str]:
    """Why auditd.conf is not what governs the kernel's audit records now (empty when it is):
    kernel auditing must be on and delivering to a daemon that started after the file's
    last change (auditd reads its configuration when it starts)."""
    status_run = _run(host, "auditctl -s")
    status = parse_status(status_run.stdout)
    evidence["auditctl_status"] = status or status_run.stderr.strip()[:200]
    if status_run.rc != 0 or "enabled" not in status:
        raise EvidenceError(f"auditctl -s failed (exit {status_run.rc}): "
                            f"{(status_run.stderr or status_run.stdout).strip()[:200]}")
    pid = status.get("pid", "0")
    if status["enabled"].split()[0] not in ("1", "2") or pid in ("", "0"):
        return [f"auditctl -s shows enabled {status['enabled']}, pid {pid}: no auditd receives "
                f"the kernel's records, so {path} governs nothing"]
    if not pid.isdigit():
        raise EvidenceError(f"auditctl -s shows pid {pid!r}")
    times = _run(host, f"cat /proc/{pid}/stat; getconf CLK_TCK; grep '^btime' /proc/stat; "
                       f"stat -c %Y {shlex.quote(path)}").stdout.splitlines()
    try:
        ticks = int(times[0].rsplit(")", 1)[1].split()[19])
        started = int(times[2].split()[1]) + ticks / int(times[1])
        changed = int(times[3])
    except (IndexError, ValueError):
        raise EvidenceError(f"cannot read when auditd (pid {pid}) started and when {path} "
                            f"changed: {' | '.join(times)[:200]}") from None
    evidence.update({"auditd_started": round(started), "config_changed": changed})
    if changed > started + 1:
        return [f"{path} changed after auditd (pid {pid}) started: the running daemon uses an "
                "older configuration until it restarts"]
    return []


@rule("AUD-003")
def test_aud_003(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """The kernel holds exactly the persisted audit rules, and they cover what must be recorded."""
    merged_path = params["rules_file"]
    merged = _read(host, merged_path)
    loaded_run = _run(host, "auditctl -l")
    status = parse_status(_run(host, "auditctl -s").stdout)
    if loaded_run.rc == 127:
        raise AssertionError("auditctl is not installed: auditd is missing, no rules are loaded")
    if loaded_run.rc != 0:
        raise EvidenceError(f"auditctl -l failed (exit {loaded_run.rc}): "
                            f"{loaded_run.stderr.strip()[:200]}: the loaded rules are unknown")
    loaded = parse_rules(loaded_run.stdout)
    persisted = parse_rules(merged or "")
    missing = [r.text for r in persisted if r not in set(loaded)]
    extra = [r.text for r in loaded if r not in set(persisted)]
    required = list(params["required_keys"])
    mapr_conf = params["mapr_conf_dir"]
    if host.file(mapr_conf).is_directory:
        required += list(params["mapr_keys"])
    absent_keys = sorted(set(required) - rule_keys(loaded))
    enabled = status.get("enabled", "0").split()[0]
    evidence.update({
        "rules_file": merged_path, "persisted": len(persisted), "loaded": len(loaded),
        "missing_in_kernel": missing, "not_persisted": extra, "required_keys": required,
        "keys_loaded": sorted(rule_keys(loaded)), "enabled": enabled,
    })
    failures = []
    if merged is None:
        failures.append(f"{merged_path} does not exist: no rules are persisted")
    if missing:
        failures.append(f"{len(missing)} persisted rules are not loaded (first: {missing[0]})")
    if extra:
        failures.append(f"{len(extra)} loaded rules are not persisted and are lost at reboot "
                        f"(first: {extra[0]})")
    if absent_keys:
        failures.append(f"no loaded rule records {', '.join(absent_keys)}")
    allowed = [str(v) for v in params["enabled_allowed"]]
    if enabled not in allowed:
        failures.append(f"kernel audit enabled is {enabled}; allowed: {', '.join(allowed)}")
    assert not failures, "; ".join(failures)


@rule("AUD-004")
def test_aud_004(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Touching a watched file produces an audit record with the rule's key."""
    path, key = params["path"], params["key"]
    # touch -r FILE FILE sets the file's times to themselves: an attribute change that the
    # watch records, with the content and the times as they were.
    quoted = shlex.quote(path)
    touched = _run(host, f"echo $$; exec touch -r {quoted} {quoted}")
    if touched.rc != 0:
        raise AssertionError(f"could not touch {path}: {touched.stderr.strip()}")
    pid = touched.stdout.split()[0]
    search = (f"ausearch --input-logs -i -k {shlex.quote(key)} -p {pid} -x touch -ts recent "
              "2>&1")
    deadline = time.monotonic() + params["timeout_seconds"]
    while True:
        found = _run(host, search)
        if found.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    evidence.update({"touched": path, "pid": pid, "key": key, "search": search,
                     "record": found.stdout.strip()[-600:]})
    assert found.rc == 0, (f"no audit record with key {key} for touching {path} (pid {pid}) "
                           f"within {params['timeout_seconds']} s: {found.stdout.strip()[:200]}")


@rule("AUD-005")
def test_aud_005(host: Any, host_snapshot: HostSnapshot, params: dict[str, Any],
                 evidence: dict[str, Any]) -> None:
    """journald keeps the journal on disk, with size limits."""
    conf = parse_unit_config(
        _run(host, "systemd-analyze cat-config systemd/journald.conf").stdout, "Journal")
    journal_dir = "/var/log/journal"
    files = _run(host, f"ls -1 {journal_dir}/*/system.journal 2>/dev/null").stdout.split()
    fstype = _run(host, f"findmnt -n -o FSTYPE --target {journal_dir}").stdout.strip()
    evidence.update({"journald": conf, "system_journals": files, "filesystem": fstype})
    failures = []
    if conf.get("Storage") != "persistent":
        failures.append(f"Storage is {conf.get('Storage', 'auto (not set)')}; it must be "
                        "persistent")
    for key in params["required_limits"]:
        if not conf.get(key):
            failures.append(f"{key} is not set: the journal has no explicit limit")
    if fstype == "tmpfs":
        container = host_snapshot.facts.container  # as the inventory decided, not the node
        if container:
            not_applicable(f"{journal_dir} is a tmpfs on a {container} container node "
                           f"({host_snapshot.facts.kind_source}): where the journal lives is the "
                           "runtime's choice; verify on a VM or bare-metal node")
        failures.append(f"{journal_dir} is on tmpfs: the journal is lost at reboot")
    if not files:
        failures.append(f"journald writes no system journal under {journal_dir}")
    assert not failures, "; ".join(failures)


@rule("AUD-006")
def test_aud_006(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Audit logs are root's alone; no log file is open to others."""
    log_dir = params["audit_log_dir"]
    d = host.file(log_dir)
    failures = []
    if not d.is_directory:
        failures.append(f"{log_dir} does not exist (auditd is not installed)")
    else:
        evidence["audit_log_dir"] = {"mode": oct(d.mode), "user": d.user}
        if d.user != "root" or d.mode & 0o027:
            failures.append(f"{log_dir} is {d.user}, mode {oct(d.mode)}: root only, no group "
                            "write, nothing for others")
        listing = _run(host, f"find {shlex.quote(log_dir)} -maxdepth 1 -type f "
                             "-printf '%m %u %p\\n'")
        if _find_failed(listing):
            raise EvidenceError(f"find in {log_dir} failed (exit {listing.rc}): "
                                f"{listing.stderr.strip()[:200]}")
        logs = listing.stdout.split("\n")
        for line in filter(None, logs):
            mode, user, path = line.split(" ", 2)
            if user != "root" or int(mode, 8) & 0o137:
                failures.append(f"{path} is {user}, mode {mode}: at most 0640, owned by root")
    exceptions = set(params["readable_exceptions"])
    found_run = _run(host, "find /var/log -xdev -type f -perm /o+rwx -printf '%m %p\\n'")
    if _find_failed(found_run):
        raise EvidenceError(f"find in /var/log failed (exit {found_run.rc}): "
                            f"{found_run.stderr.strip()[:200]}: files open to others are unknown")
    open_files = []
    for line in filter(None, found_run.stdout.split("\n")):
        mode, path = line.split(" ", 1)
        if path in exceptions and not int(mode, 8) & 0o003:
            continue
        open_files.append(f"{path} ({mode})")
    evidence["open_to_others"] = open_files
    if open_files:
        failures.append(f"{len(open_files)} log files are open to others: "
                        + ", ".join(open_files[:10]))
    assert not failures, "; ".join(failures)


@rule("AUD-007")
def test_aud_007(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """chrony runs with designated time sources and is synchronised to one of them."""
    unit = _unit(host, "chrony.service")
    files = read_files(host, "/etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf "
                              "/etc/chrony/sources.d/*.sources")
    sources = parse_time_sources(files)
    tracking = parse_tracking(_run(host, "chronyc -n tracking").stdout)
    sources_out = _run(host, "chronyc -n sources").stdout
    selected = selected_sources(sources_out)
    evidence.update({"unit": unit, "configured": sources, "tracking": tracking,
                     "selected": selected, "sources": sources_out.strip()[-600:]})
    failures = _service_problems(unit, "chrony.service", "chrony")
    if not sources:
        failures.append("no time source (server, pool or peer) is configured")
    if params["require_synchronised"] and not failures:
        leap = tracking.get("Leap status", "unknown")
        if leap != "Normal" or not selected:
            failures.append(f"not synchronised (leap status {leap}, selected source "
                            f"{', '.join(selected) or 'none'})")
    assert not failures, "; ".join(failures)


ACCEPTED_SHOWN = 5
_ACCEPTED = re.compile(r"accepted-[0-9]{8}T[0-9]{6}Z[.]txt")


def _accepted_baselines(host: Any, directory: str) -> dict[str, Any]:
    """What earlier baselines accepted: audit_logging keeps the report of each difference a new
    baseline took in <database dir>/accepted-<time>.txt. Evidence for the auditor (what was
    accepted, and when); the verdict is the check's alone."""
    quoted = shlex.quote(directory)
    listing = _run(host, f"ls -1 {quoted}")
    if listing.rc != 0:
        return {"error": f"{directory} could not be listed (exit {listing.rc}): "
                         f"{listing.stderr.strip()}"}
    names = sorted(n for n in listing.stdout.split() if _ACCEPTED.fullmatch(n))
    reports = []
    for name in names[-ACCEPTED_SHOWN:]:
        text = _read(host, f"{directory}/{name}")
        if text is None:
            reports.append({"report": name, "error": "unreadable"})
            continue
        reports.append({"report": name, **aide_summary(text)})
    return {"count": len(names), "latest": reports}


@rule("AUD-008")
def test_aud_008(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """AIDE has a baseline, checks on a schedule, and finds no change now."""
    config = params["config"]
    text = _read(host, config)
    if text is None:
        raise AssertionError(f"{config} does not exist (AIDE is not configured)")
    database = ""
    for line in text.splitlines():
        if line.strip().startswith("database_in="):
            database = line.split("=", 1)[1].strip().removeprefix("file:")
    timers = {t: _unit(host, t) for t in params["timers"]}
    scheduled = [t for t, state in timers.items() if _unit_running(state)]
    evidence.update({"config": config, "database": database, "scheduled_by": scheduled})
    failures = []
    baseline = bool(database) and host.file(database).exists
    if not baseline:
        failures.append(f"no AIDE baseline ({database or 'database_in not set'} is missing)")
    if not scheduled:
        failures.append(f"no scheduled check: none of {', '.join(params['timers'])} is enabled "
                        "and active")
    if baseline:
        evidence["accepted_baselines"] = _accepted_baselines(host, posixpath.dirname(database))
    if not failures:
        check = _run(host, f"aide --check --config={shlex.quote(config)}")
        summary = aide_summary(check.stdout)
        evidence.update({"aide_exit": check.rc, "aide": summary})
        if check.rc != 0:
            failures.append(f"aide --check exit {check.rc}: {summary.get('added', 0)} added, "
                            f"{summary.get('removed', 0)} removed, {summary.get('changed', 0)} "
                            f"changed ({', '.join(summary['paths'][:5]) or check.stderr.strip()})")
    assert not failures, "; ".join(failures)


@rule("AUD-009")
def test_aud_009(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """rsyslog forwards to a central collector over TCP, and the connection is up."""
    unit = _unit(host, "rsyslog.service")
    files = read_files(host, "/etc/rsyslog.conf /etc/rsyslog.d/*.conf")
    forwards = [f for f in parse_forwards(files)
                if not params["target"] or f.target == params["target"]]
    tcp = [f for f in forwards if f.protocol in params["protocols_allowed"]]
    evidence.update({"unit": unit, "forwards": [f.__dict__ for f in forwards]})
    failures = _service_problems(unit, "rsyslog.service", "rsyslog")
    if not tcp:
        failures.append("no forwarding to a central collector over "
                        f"{'/'.join(params['protocols_allowed'])} is configured"
                        + (f" (found {forwards[0].protocol})" if forwards else ""))
    assert not failures, "; ".join(failures)
    # A record is sent first, so that the connection exists even on a quiet node.
    _run(host, "logger -p user.info -t m7guard-audit 'AUD-009 forwarding check'")
    target = tcp[0]
    addresses = set(_run(host, f"getent ahosts {shlex.quote(target.target)} | "
                               "awk '{print $1}'").stdout.split()) | {target.target}
    established: list[str] = []
    deadline = time.monotonic() + params["timeout_seconds"]
    while time.monotonic() <= deadline:
        out = _run(host, f"ss -Htn state established '( dport = :{target.port} )'").stdout
        established = [ln.split()[-1] for ln in out.splitlines() if ln.split()]
        if any(peer.rsplit(":", 1)[0].strip("[]") in addresses for peer in established):
            break
        time.sleep(1)
    evidence["established"] = established
    assert any(peer.rsplit(":", 1)[0].strip("[]") in addresses for peer in established), (
        f"no established TCP connection to the collector {target.target}:{target.port}")


@rule("AUD-010")
def test_aud_010(host: Any, params: dict[str, Any], evidence: dict[str, Any]) -> None:
    """Data Fabric file system, table and cluster administration auditing is on."""
    maprcli = shlex.quote(params["maprcli"])
    feature_run = _run(host, f"{maprcli} config load -keys mfs.feature.audit.support -json")
    info_run = _run(host, f"{maprcli} audit info -json")
    if feature_run.rc != 0 or info_run.rc != 0:
        raise EvidenceError(f"maprcli failed: {(feature_run.stderr or info_run.stderr).strip()}")
    feature = (json.loads(feature_run.stdout).get("data") or [{}])[0]
    info = (json.loads(info_run.stdout).get("data") or [{}])[0]
    evidence.update({"config": feature, "audit": info})
    failures = []
    if str(feature.get("mfs.feature.audit.support")) != "1":
        failures.append("mfs.feature.audit.support is not 1")
    if str(info.get("cluster", {}).get("enabled")) != "1":
        failures.append("cluster administration auditing is off")
    data = info.get("data", {})
    if str(data.get("enabled")) != "1":
        failures.append("data access auditing is off")
    try:
        retention = int(data.get("retentionDays", 0))
    except ValueError:
        retention = 0
    if retention < params["min_retention_days"]:
        failures.append(f"data audit retention is {data.get('retentionDays')} days; at least "
                        f"{params['min_retention_days']} required")
    assert not failures, "; ".join(failures)
