#!/usr/bin/python3
"""Read-only probe of the audit_logging role: one round trip per step instead of one module
call per fact (on a node under software emulation each module call costs seconds).

Usage: audit_logging_probe.py STEP JSON_ARGS
Prints one JSON object. It changes nothing on the node, so the role runs it in check mode too.

Steps:
  node     container detection, architecture, free space for the audit logs, MapR layout,
           installed packages, unit states, set-uid / set-gid programs
  files    which managed files are missing or differ from what their templates render
  kernel   audit rule state: augenrules --check, and (own kernel only) auditctl -s / -l
  logs     audit log files and any log file that others may read or write
  aide     whether the AIDE baseline exists
  mapr     Data Fabric audit state as maprcli reports it
Every step also reports, under "dirs", which of the directories given in JSON_ARGS["dirs"]
(path, mode, owner uid, group gid) are missing or differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys


def run(argv: list[str]) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def dirs_to_fix(wanted: list[dict]) -> list[str]:
    bad = []
    for spec in wanted:
        try:
            st = os.lstat(spec["path"])
        except FileNotFoundError:
            bad.append(spec["path"])
            continue
        if (
            not stat.S_ISDIR(st.st_mode)
            or stat.S_IMODE(st.st_mode) != int(spec["mode"], 8)
            or st.st_uid != 0
            or st.st_gid != 0
        ):
            bad.append(spec["path"])
    return bad


def container_signals() -> list[str]:
    signals = []
    code, out, _ = run(["systemd-detect-virt", "--container"])
    if code == 0 and out.strip() not in ("", "none"):
        signals.append(f"systemd-detect-virt --container: {out.strip()}")
    for path in ("/run/.containerenv", "/.dockerenv"):
        if os.path.exists(path):
            signals.append(f"{path} exists")
    try:
        with open("/proc/1/environ", "rb") as fh:
            for item in fh.read().split(b"\0"):
                if item.startswith(b"container="):
                    signals.append("PID 1 environment: " + item.decode(errors="replace"))
    except OSError:
        pass
    return signals


def package_installed(name: str) -> bool:
    code, out, _ = run(["dpkg-query", "-W", "-f", "${Status}", name])
    return code == 0 and out.strip() == "install ok installed"


def unit_state(name: str) -> dict:
    _code, out, _ = run(
        ["systemctl", "show", name, "--property=UnitFileState,ActiveState,LoadState"]
    )
    state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {
        "enabled": state.get("UnitFileState") == "enabled",
        "active": state.get("ActiveState") == "active",
        "loaded": state.get("LoadState") == "loaded",
    }


def mount_of(path: str) -> str:
    best = "/"
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            for line in fh:
                point = line.split()[1]
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(
                    best
                ):
                    best = point
    except OSError:
        pass
    return best


def step_node(args: dict) -> dict:
    log_dir = args.get("log_dir", "/var/log/audit")
    probe = log_dir
    while not os.path.isdir(probe):
        probe = os.path.dirname(probe) or "/"
    vfs = os.statvfs(probe)
    home = args.get("mapr_home", "/opt/mapr")
    maprcli = args.get("maprcli", home + "/bin/maprcli")
    cluster = ""
    try:  # the node's cluster: the first entry, comments and blank lines left out
        with open(os.path.join(home, "conf", "mapr-clusters.conf"), encoding="utf-8") as fh:
            entries = [ln.split() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
            cluster = entries[0][0] if entries else ""
    except OSError:
        pass
    signals = container_signals()
    return {
        "packages": {name: package_installed(name) for name in args.get("packages", [])},
        "units": {name: unit_state(name) for name in args.get("units", [])},
        "privileged": step_setuid(args)["programs"],
        "package_rules_file": os.path.exists(args.get("package_rules_file", "/nonexistent")),
        "container": bool(signals),
        "container_signals": signals,
        "architecture": os.uname().machine,
        "log_mount": mount_of(probe),
        "log_free_mib": vfs.f_bavail * vfs.f_frsize // (1024 * 1024),
        "mapr": {
            "home": os.path.isdir(home),
            "maprcli": os.path.isfile(maprcli) and os.access(maprcli, os.X_OK),
            "conf": os.path.isdir(os.path.join(home, "conf")),
            "cluster": cluster,
            "cldb": os.path.exists(os.path.join(home, "roles", "cldb")),
        },
    }


def step_setuid(_args: dict) -> dict:  # part of step_node
    code, out, err = run(["find", "/", "-xdev", "-type", "f", "-perm", "/6000", "-print"])
    if code not in (0, 1):
        raise SystemExit(f"find failed ({code}): {err.strip()}")
    return {"programs": sorted(p for p in out.splitlines() if p.startswith("/"))}


def rule_lines(lines: list[str], prefixes: tuple[str, ...]) -> int:
    return sum(1 for line in lines if line.startswith(prefixes))


def step_kernel(args: dict) -> dict:
    result: dict = {}
    code, out, err = run(["augenrules", "--check"])
    result["augenrules_check"] = (out + err).strip()
    result["merge_pending"] = code == 0 and "should be updated" in out
    merged = args.get("merged", "/etc/audit/audit.rules")
    try:
        with open(merged, encoding="utf-8") as fh:
            result["persisted_count"] = rule_lines(fh.read().splitlines(), ("-a ", "-A ", "-w "))
    except OSError:
        result["persisted_count"] = 0
    if args.get("container", True):
        return result  # never ask the host kernel from a container
    code, out, err = run(["auditctl", "-s"])
    status = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            status[parts[0]] = parts[1]
    result["status"] = status
    result["enabled"] = int(status.get("enabled", "0").split()[0] or 0)
    code, out, err = run(["auditctl", "-l"])
    result["loaded_count"] = rule_lines(out.splitlines(), ("-a ", "-w "))
    return result


def step_logs(args: dict) -> dict:
    log_dir = args.get("log_dir", "/var/log/audit")
    audit_logs = []
    if os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            path = os.path.join(log_dir, name)
            st = os.lstat(path)
            if name.startswith("audit.log") and stat.S_ISREG(st.st_mode) and (
                stat.S_IMODE(st.st_mode) != 0o600 or st.st_uid != 0 or st.st_gid != 0
            ):
                audit_logs.append(path)
    exceptions = set(args.get("exceptions", []))
    _code, out, _err = run(["find", "/var/log", "-xdev", "-type", "f", "-perm", "/o+rwx", "-print"])
    open_logs = []
    for path in out.splitlines():
        if path in exceptions:
            if os.stat(path).st_mode & stat.S_IWOTH:
                open_logs.append(path)
        elif path.startswith("/"):
            open_logs.append(path)
    return {"audit_logs_to_fix": audit_logs, "open_logs": sorted(open_logs)}


def step_files(args: dict) -> dict:
    """Managed files that are missing or differ in content (sha1), mode or owner."""
    to_write = []
    for spec in args.get("files", []):
        path = spec["path"]
        try:
            st = os.lstat(path)
            with open(path, "rb") as fh:
                digest = hashlib.sha1(fh.read(), usedforsecurity=False).hexdigest()
        except OSError:
            to_write.append(path)
            continue
        if (
            not stat.S_ISREG(st.st_mode)
            or digest != spec["sha1"]
            or stat.S_IMODE(st.st_mode) != int(spec["mode"], 8)
            or st.st_uid != 0
            or st.st_gid != 0
        ):
            to_write.append(path)
    return {"to_write": to_write}


def step_aide(args: dict) -> dict:
    return {"database": os.path.isfile(args.get("database", "/var/lib/aide/aide.db"))}


def step_mapr(args: dict) -> dict:
    maprcli = args["maprcli"]
    out = {}
    for name, argv in (
        ("config", [maprcli, "config", "load", "-keys", "mfs.feature.audit.support", "-json"]),
        ("audit", [maprcli, "audit", "info", "-json"]),
    ):
        code, text, err = run(argv)
        if code != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({code}): {err.strip() or text.strip()}")
        out[name] = (json.loads(text).get("data") or [{}])[0]
    return {
        "feature": str(out["config"].get("mfs.feature.audit.support", "0")),
        "cluster_audit": out["audit"].get("cluster", {}),
        "data_audit": out["audit"].get("data", {}),
    }


STEPS = {
    "node": step_node,
    "files": step_files,
    "kernel": step_kernel,
    "logs": step_logs,
    "aide": step_aide,
    "mapr": step_mapr,
}


def main() -> None:
    step = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    result = STEPS[step](args)
    result["dirs"] = dirs_to_fix(args.get("dirs", []))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
