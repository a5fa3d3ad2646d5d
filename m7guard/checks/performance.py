"""Tuning baseline checks: the PERF-* rules of policies/rules/performance/.

PERF rules sit outside the compliance frameworks: they verify the Data Fabric tuning that
kernel_tuning applies for the node's M7i size. Like the KERN checks they require both the
running value and the persisted configuration. On a container node the host kernel's keys,
/sys and IRQs are the host's: those parts are notapplicable there.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from collections.abc import Iterable
from typing import Any

from m7guard.checks import rule
from m7guard.checks.support.files import cat_script, new_marker, split_files
from m7guard.checks.support.sizing import SizingUnavailableError, host_profile, network_targets
from m7guard.checks.support.snapshot import HostSnapshot
from m7guard.checks.support.sysctl import Predicate, SysctlCheck, one_of
from m7guard.checks.support.verdict import EvidenceError, conclude, not_applicable

# random per process, so no file on the node can carry a line that looks like either
MARK = f"@@m7g-perf-{secrets.token_hex(8)}"
FILE_MARK = new_marker()


# -- helpers -------------------------------------------------------------------------------


def _require_sysctls(
    snap: HostSnapshot, evidence: dict[str, Any], wanted: dict[str, tuple[Predicate, str]]
) -> None:
    """Every key's running and persisted value must satisfy its predicate (SysctlCheck)."""
    __tracebackhide__ = True
    SysctlCheck(list(wanted), snap.running_value, snap.config, snap.facts.container,
                evidence).require_each(wanted)


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split()]
    except ValueError:
        return []


def _at_least(minimum: int, field: int = 0) -> tuple[Predicate, str]:
    def ok(value: str) -> bool:
        parts = _ints(value)
        return len(parts) > field and parts[field] >= minimum

    where = "" if field == 0 else f" (field {field + 1})"
    return ok, f">= {minimum}{where}"


def _sections(output: str) -> dict[str, str]:
    """Split `MARK name` sections of a script's output."""
    out: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith(MARK + " "):
            current = line[len(MARK) + 1 :].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def _read(host: Any, parts: dict[str, str]) -> dict[str, str]:
    """Run several read-only shell snippets in one round trip; their outputs by name."""
    script = "\n".join(f"echo '{MARK} {name}'; {{ {cmd}; }} 2>/dev/null" for name, cmd in
                       parts.items())
    result = host.run("sh -c %s", script)
    found = _sections(result.stdout)
    if missing := [name for name in parts if name not in found]:
        # The script did not run (or stopped): an empty section would read as "nothing there".
        raise EvidenceError(
            f"reading the node gave no output for {', '.join(missing)} (exit {result.rc}): "
            f"{(result.stderr or '').strip()[-200:]}"
        )
    return found


def _files(listing: str) -> list[tuple[str, str]]:
    """The files _cat_files listed, as (path, text) in the order listed."""
    return list(split_files(listing, FILE_MARK).items())


def _cat_files(dirs: Iterable[str], pattern: str) -> str:
    return cat_script(" ".join(f"{d}/{pattern}" for d in dirs), FILE_MARK)


def _effective_files(pairs: list[tuple[str, str]], dirs: tuple[str, ...]) -> list[tuple[str, str]]:
    """Same-named files: the one in the earliest directory wins; lexical order of names."""
    rank = {d: i for i, d in enumerate(dirs)}
    chosen: dict[str, tuple[str, str]] = {}
    for path, text in sorted(pairs, key=lambda p: rank.get(posixpath.dirname(p[0]), 99)):
        chosen.setdefault(posixpath.basename(path), (path, text))
    return [chosen[name] for name in sorted(chosen)]


def _size(host: Any, evidence: dict[str, Any]) -> dict[str, Any]:
    try:
        profile, how = host_profile(host)
    except SizingUnavailableError as exc:
        raise EvidenceError(str(exc)) from None
    evidence["instance"] = how
    if profile is None:  # the m7i_profile role records it: its absence is the node's to fix
        raise AssertionError(
            "the node's instance type is unknown: pin m7i_instance_type in the inventory or run "
            "the m7i_profile role (it records /etc/ansible/facts.d/m7i_profile.fact)"
            + (f" ({how['error']})" if how.get("error") else "")
        )
    evidence["instance"]["type"] = profile.get("instance_type")
    return profile


# -- kernel parameters ---------------------------------------------------------------------


@rule("PERF-001", sysctl=["vm.swappiness", "vm.overcommit_memory"])
def test_perf_001(host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """Virtual memory behaves as Data Fabric expects (swappiness, overcommit)."""
    _require_sysctls(host_snapshot, evidence, {
        "vm.swappiness": one_of(params["swappiness"]),
        "vm.overcommit_memory": one_of(params["overcommit_memory"]),
    })


@rule("PERF-002", sysctl=["vm.min_free_kbytes"])
def test_perf_002(host: Any, host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """vm.min_free_kbytes keeps 1-3 % of the memory free."""
    meminfo = host.run("cat /proc/meminfo").stdout
    found = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, flags=re.MULTILINE)
    assert found, "MemTotal not found in /proc/meminfo"
    total = int(found.group(1))
    low = total * int(params["min_percent"]) // 100
    high = total * int(params["max_percent"]) // 100
    evidence["memtotal_kib"] = total
    _require_sysctls(host_snapshot, evidence, {
        "vm.min_free_kbytes": (
            lambda v: bool(_ints(v)) and low <= _ints(v)[0] <= high,
            f"{low}-{high} ({params['min_percent']}-{params['max_percent']} % of {total} kB)",
        ),
    })


@rule("PERF-003", sysctl=["net.ipv4.tcp_retries2", "net.ipv4.tcp_fin_timeout"])
def test_perf_003(host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """TCP gives up on dead peers and closes connections as Data Fabric expects."""
    _require_sysctls(host_snapshot, evidence, {
        "net.ipv4.tcp_retries2": one_of(params["tcp_retries2"]),
        "net.ipv4.tcp_fin_timeout": one_of(params["tcp_fin_timeout"]),
    })


@rule("PERF-004", sysctl=["net.ipv4.ip_local_port_range"])
def test_perf_004(host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """Ephemeral ports end below the Data Fabric service ports."""
    top = int(params["highest_port"])

    def ok(value: str) -> bool:
        parts = _ints(value)
        return len(parts) == 2 and 1024 <= parts[0] <= parts[1] <= top

    _require_sysctls(host_snapshot, evidence, {
        "net.ipv4.ip_local_port_range": (ok, f"a range within 1024-{top}"),
    })


@rule(
    "PERF-005",
    sysctl=["net.core.rmem_max", "net.core.wmem_max", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"],
)
def test_perf_005(host: Any, host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """Socket buffers follow the bandwidth-delay product of the node's size."""
    target = network_targets(_size(host, evidence), params["rtt_ms"])
    evidence["target"] = target
    _require_sysctls(host_snapshot, evidence, {
        "net.core.rmem_max": _at_least(target["rmem_max"]),
        "net.core.wmem_max": _at_least(target["wmem_max"]),
        "net.ipv4.tcp_rmem": _at_least(target["rmem_max"], 2),
        "net.ipv4.tcp_wmem": _at_least(target["wmem_max"], 2),
    })


@rule("PERF-006", sysctl=["net.core.netdev_max_backlog"])
def test_perf_006(host: Any, host_snapshot: HostSnapshot, evidence: dict[str, Any]) -> None:
    """The receive backlog follows the node's network bandwidth."""
    target = network_targets(_size(host, evidence), 1)
    evidence["target"] = {"netdev_max_backlog": target["netdev_max_backlog"],
                          "bandwidth_gbps": target["bandwidth_gbps"]}
    _require_sysctls(host_snapshot, evidence, {
        "net.core.netdev_max_backlog": _at_least(target["netdev_max_backlog"]),
    })


# -- memory, limits, services ---------------------------------------------------------------

THP = "/sys/kernel/mm/transparent_hugepage"
GRUB_FILES = "/etc/default/grub /etc/default/grub.d/*.cfg"
GRUB_CFG = "/boot/grub/grub.cfg /boot/grub2/grub.cfg"
_GRUB_VAR = re.compile(r"^\s*(?:export\s+)?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*)$")
_SHELL_REF = re.compile(r"\$\{?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)\}?")
_LINUX_LINE = re.compile(r"^\s*(linux|linux16|linuxefi)\s+(.*)$", re.MULTILINE)


def grub_cmdline(text: str) -> list[str]:
    """The kernel parameters the GRUB defaults give (GRUB_CMDLINE_LINUX, then
    GRUB_CMDLINE_LINUX_DEFAULT), as grub-mkconfig sources the files: commented lines set
    nothing, a later assignment replaces an earlier one, `$GRUB_CMDLINE_LINUX` expands."""
    values = {"GRUB_CMDLINE_LINUX": "", "GRUB_CMDLINE_LINUX_DEFAULT": ""}
    for raw in text.splitlines():
        line = raw.strip()
        found = _GRUB_VAR.match(line) if line and not line.startswith("#") else None
        if not found:
            continue
        name, rhs = found.groups()
        try:
            words = shlex.split(rhs, comments=True)
        except ValueError:
            words = rhs.strip("'\"").split()
        text_value = " ".join(words)
        values[name] = _SHELL_REF.sub(lambda m: values[m.group(1)], text_value)
    return " ".join(values.values()).split()


def kernel_param(words: Iterable[str], name: str) -> str | None:
    """The value of `name=` among kernel parameters (the last one wins), or None."""
    found = None
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key == name:
            found = value
    return found


def _persisted_by_unit_or_tmpfiles(text: str, path: str, value: str) -> bool:
    """Whether an enabled unit or a tmpfiles.d line writes `value` into `path` at boot."""
    for line in text.splitlines():
        line = line.strip()
        if path in line and re.search(rf"(^|\W){re.escape(value)}(\W|$)", line) and (
            line.startswith(("ExecStart", "ExecStartPre", "w ", "w+ "))
        ):
            return True
    return False


@rule("PERF-007")
def test_perf_007(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """Transparent huge pages are off, now and at every boot."""
    value = params["value"]
    out = _read(host, {
        "enabled": f"cat {THP}/enabled",
        "cmdline": "cat /proc/cmdline",
        "grub": f"cat {GRUB_FILES}",
        "grubcfg": f"cat {GRUB_CFG}",
        "units": "cat /etc/systemd/system/*.wants/*.service /lib/systemd/system/*.wants/*.service",
        "tmpfiles": "cat /etc/tmpfiles.d/*.conf",
    })
    running = re.search(r"\[(\w+)\]", out.get("enabled", ""))
    current = running.group(1) if running else None
    grub = kernel_param(grub_cmdline(out.get("grub", "")), "transparent_hugepage")
    booted = kernel_param(out.get("cmdline", "").split(), "transparent_hugepage")
    entries = [kernel_param(m.group(2).split(), "transparent_hugepage")
               for m in _LINUX_LINE.finditer(out.get("grubcfg", ""))]
    boot_unit = _persisted_by_unit_or_tmpfiles(
        out.get("units", "") + "\n" + out.get("tmpfiles", ""), f"{THP}/enabled", value)
    evidence.update({
        "read": f"{THP}/enabled", "running": current, "wanted": value,
        "kernel_command_line": booted == value, "booted_with": booted,
        "grub": grub, "grub_cfg_entries": entries,
        "boot_unit_or_tmpfiles": boot_unit,
    })
    failures = []
    if current != value:
        failures.append(f"transparent huge pages are {current} at run time; wanted: {value}")
    if booted is not None and booted != value:
        failures.append(f"the running kernel's command line (/proc/cmdline) sets "
                        f"transparent_hugepage={booted}")
    # The GRUB defaults reach a boot only through the generated grub.cfg; without one to
    # read, the running kernel's command line shows whether they did.
    applied = all(e == value for e in entries) if entries else booted == value
    if grub is not None and grub != value:
        failures.append(f"the GRUB command line sets transparent_hugepage={grub}")
    elif grub == value and not applied and not boot_unit:
        failures.append(
            f"the GRUB defaults set transparent_hugepage={value} but the generated grub.cfg "
            f"({GRUB_CFG}) does not pass it to the kernel (entries: {entries or 'none read'}): "
            "update-grub has not run, so nothing sets it at boot"
        )
    elif grub is None and not boot_unit:
        failures.append(
            f"nothing sets transparent huge pages to {value} at boot (no transparent_hugepage= "
            "in the GRUB command line, no enabled unit or tmpfiles.d line writing it)"
        )
    assert not failures, "; ".join(failures)


def _limits(
    files: list[tuple[str, str]], user: str, groups: Iterable[str],
    unknown: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Effective soft/hard nofile and nproc of `user` from pam_limits files (in order):
    a line for the user beats one for a group, which beats `*`; equals: the later wins.
    Domains this reader does not evaluate (uid and gid ranges, `%` groups) that set nofile
    or nproc are appended to `unknown`."""
    groups = set(groups)
    best: dict[tuple[str, str], tuple[int, int | str, str]] = {}
    for path, body in files:
        for number, raw in enumerate(body.splitlines(), start=1):
            fields = raw.split("#", 1)[0].split()
            if len(fields) != 4 or fields[2] not in ("nofile", "nproc"):
                continue
            domain, kind, item, value = fields
            if domain == user:
                rank = 3
            elif domain.startswith("@") and ":" not in domain and domain[1:] in groups:
                rank = 2
            elif domain == "*":
                rank = 1
            else:
                if unknown is not None and (":" in domain or domain.startswith("%")):
                    unknown.append(f"{path}:{number}: domain {domain} is not evaluated")
                continue
            parsed: int | str = int(value) if value.isdigit() else value
            for which in ("soft", "hard") if kind == "-" else (kind,):
                key = (item, which)
                if key not in best or rank >= best[key][0]:
                    best[key] = (rank, parsed, f"{path}:{number}")
    return {f"{item}_{which}": {"value": v[1], "in": v[2]} for (item, which), v in best.items()}


UNIT_LIMITS = {"nofile": ("LimitNOFILESoft", "LimitNOFILE"),
               "nproc": ("LimitNPROCSoft", "LimitNPROC")}


def _too_low(value: str, minimum: int) -> bool:
    return value != "infinity" and not (value.isdigit() and int(value) >= minimum)


@rule("PERF-008")
def test_perf_008(host: Any, host_snapshot: HostSnapshot, evidence: dict[str, Any],
                  params: dict[str, Any]) -> None:
    """The Data Fabric user may open enough files and processes."""
    user = params["user"]
    units = [str(u) for u in params.get("services", [])]
    props = "LoadState," + ",".join(p for pair in UNIT_LIMITS.values() for p in pair)
    out = _read(host, {
        "files": cat_script("/etc/security/limits.conf /etc/security/limits.d/*.conf",
                            FILE_MARK),
        "groups": f"id -nG {shlex.quote(user)}",
        "proc": f"p=$(pgrep -u {shlex.quote(user)} | head -n1); [ -n \"$p\" ] && "
                "grep -E '^Max (open files|processes)' /proc/$p/limits",
        **{f"unit {u}": f"systemctl show -p {props} {shlex.quote(u)}" for u in units},
    })
    files = _files(out.get("files", ""))
    unknown: list[str] = []
    effective = _limits(files, user, out.get("groups", "").split(), unknown)
    wanted = {"nofile": int(params["nofile"]), "nproc": int(params["nproc"])}
    evidence.update({"user": user, "files": [p for p, _ in files], "persisted": effective,
                     "wanted": wanted, "running_process": out.get("proc") or None})
    failures = []
    for item, minimum in wanted.items():
        for which in ("soft", "hard"):
            found = effective.get(f"{item}_{which}")
            value = found["value"] if found else None
            if value is None:
                failures.append(f"no {which} {item} limit for {user} in /etc/security/limits*")
            elif value not in ("unlimited", "infinity") and (
                not isinstance(value, int) or value < minimum
            ):
                failures.append(f"{which} {item} of {user} is {value} ({found['in']}); "
                                f"wanted >= {minimum}")
    for line in (out.get("proc") or "").splitlines():
        name = "nofile" if "open files" in line else "nproc"
        for which, limit in zip(("soft", "hard"), line.split()[-3:-1], strict=True):
            if limit.isdigit() and int(limit) < wanted[name]:
                failures.append(f"a running {user} process has {which} {name} {limit}; wanted "
                                f">= {wanted[name]}")
    # pam_limits applies to sessions only: a service systemd starts gets the unit's limits.
    unit_evidence: dict[str, Any] = {}
    for unit in units:
        shown = dict(line.split("=", 1) for line in out.get(f"unit {unit}", "").splitlines()
                     if "=" in line)
        if not shown.get("LoadState"):
            if host_snapshot.facts.systemd:
                unknown.append(f"systemctl show {unit} printed nothing: its limits are unknown")
            unit_evidence[unit] = "not read (no systemd)" if not host_snapshot.facts.systemd \
                else "not read"
            continue
        if shown["LoadState"] != "loaded":
            unit_evidence[unit] = "not installed"
            continue
        unit_evidence[unit] = {k: v for k, v in shown.items() if k != "LoadState"}
        for item, (soft, hard) in UNIT_LIMITS.items():
            for which, prop in (("soft", soft), ("hard", hard)):
                value = shown.get(prop, "")
                if _too_low(value, wanted[item]):
                    failures.append(f"{unit} starts its processes with {which} {item} "
                                    f"{value or 'unknown'} ({prop}); wanted >= {wanted[item]}")
    evidence["units"] = unit_evidence
    conclude(failures, unknown)


@rule("PERF-009")
def test_perf_009(host: Any, evidence: dict[str, Any]) -> None:
    """irqbalance spreads interrupts; numad does not move Data Fabric processes."""
    out = _read(host, {
        "irqbalance": "systemctl is-enabled irqbalance.service; "
                      "systemctl is-active irqbalance.service",
        "numad": "systemctl is-enabled numad.service; systemctl is-active numad.service",
    })
    irq = out.get("irqbalance", "").split()
    numad = out.get("numad", "").split()
    evidence.update({"irqbalance": irq, "numad": numad or ["not installed"]})
    failures = []
    if irq[:1] != ["enabled"] or "active" not in irq[1:]:
        failures.append(f"irqbalance is {' / '.join(irq) or 'not installed'}; wanted enabled "
                        "and active")
    if numad[:1] == ["enabled"] or "active" in numad[1:]:
        failures.append(f"numad is {' / '.join(numad)}; wanted disabled and stopped")
    assert not failures, "; ".join(failures)


# -- NVMe -----------------------------------------------------------------------------------

UDEV_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d",
             "/lib/udev/rules.d")
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")
NVME_ATTRS = ("scheduler", "nomerges", "nr_requests", "read_ahead_kb")


def _udev_assignments(files: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """ATTR{queue/...} assignments of the rules files that handle NVMe devices:
    attribute -> (value, where)."""
    found: dict[str, tuple[str, str]] = {}
    for path, body in _effective_files(files, UDEV_DIRS):
        if "nvme" not in body:
            continue
        for number, line in enumerate(body.splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            for attr, value in re.findall(r'ATTR\{queue/(\w+)\}="([^"]*)"', line):
                found[attr] = (value, f"{path}:{number}")
    return found


@rule("PERF-010")
def test_perf_010(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """NVMe (EBS) queues: no I/O scheduler, no merging, deep queues, set by a udev rule."""
    out = _read(host, {
        "devices": "for d in /sys/block/nvme[0-9]*n[0-9]*; do [ -d \"$d/queue\" ] || continue; "
                   "printf '%s' \"${d##*/}\"; for a in scheduler nomerges nr_requests "
                   "read_ahead_kb; do printf ' %s' \"$(tr ' ' , < $d/queue/$a)\"; done; "
                   "printf ' %s\\n' \"$(cat $d/mq/*/nr_tags | sort -n | head -n1)\"; done",
        "rules": _cat_files(UDEV_DIRS, "*.rules"),
    })
    devices = [line.split() for line in out.get("devices", "").splitlines() if line.strip()]
    if not devices:
        not_applicable("no NVMe block device on this host")
    want = {"scheduler": str(params["scheduler"]), "nomerges": str(params["nomerges"]),
            "read_ahead_kb": str(params["read_ahead_kb"])}
    assigned = _udev_assignments(_files(out.get("rules", "")))
    failures, records = [], []
    for fields in devices:
        if len(fields) != 6:
            failures.append(f"cannot read the queue of {fields[0]}")
            continue
        name, sched, nomerges, nr_requests, read_ahead, tags = fields
        active = re.search(r"\[([\w-]+)\]", sched)
        bound = min(int(params["nr_requests"]), int(tags)) if tags.isdigit() else int(
            params["nr_requests"])
        current = {"scheduler": active.group(1) if active else sched, "nomerges": nomerges,
                   "nr_requests": nr_requests, "read_ahead_kb": read_ahead}
        wanted = {**want, "nr_requests": str(bound)}
        records.append({"device": name, "running": current, "wanted": wanted, "nr_tags": tags})
        for attr in NVME_ATTRS:
            if current[attr] != wanted[attr]:
                failures.append(f"{name} {attr} is {current[attr]}; wanted {wanted[attr]}")
    evidence.update({"devices": records,
                     "udev": {a: {"value": v, "in": w} for a, (v, w) in assigned.items()}})
    for attr, value in want.items():
        got = assigned.get(attr)
        if got is None:
            failures.append(f"no udev rule sets queue/{attr} for NVMe devices")
        elif got[0] != value:
            failures.append(f"the udev rule {got[1]} sets queue/{attr} to {got[0]}; wanted {value}")
    if "nr_requests" not in assigned:
        failures.append("no udev rule sets queue/nr_requests for NVMe devices")
    assert not failures, "; ".join(failures)


def _modprobe_option(
    files: list[tuple[str, str]], module: str, name: str
) -> tuple[str, str] | None:
    """The last `options MODULE NAME=VALUE` of the effective modprobe.d files."""
    found = None
    aliases = {module, module.replace("_", "-")}
    for path, body in _effective_files(files, MODPROBE_DIRS):
        for number, line in enumerate(body.splitlines(), start=1):
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 3 and fields[0] == "options" and fields[1] in aliases:
                for option in fields[2:]:
                    if option.startswith(name + "="):
                        found = (option.split("=", 1)[1], f"{path}:{number}")
    return found


@rule("PERF-011")
def test_perf_011(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """The NVMe I/O timeout is at its maximum, now and at every boot."""
    wanted = str(params["io_timeout"])
    out = _read(host, {
        "running": "cat /sys/module/nvme_core/parameters/io_timeout",
        "modprobe": _cat_files(MODPROBE_DIRS, "*.conf"),
        "grub": f"cat {GRUB_FILES}",
    })
    running = out.get("running") or None
    if running is None:
        not_applicable("the nvme_core module is not loaded (no NVMe device)")
    option = _modprobe_option(_files(out.get("modprobe", "")), "nvme_core", "io_timeout")
    grub = kernel_param(grub_cmdline(out.get("grub", "")), "nvme_core.io_timeout")
    persisted, where = (grub, "GRUB command line") if grub else option or (None, None)
    evidence.update({"read": "/sys/module/nvme_core/parameters/io_timeout", "running": running,
                     "persisted": persisted, "persisted_in": where, "wanted": wanted})
    failures = []
    if running != wanted:
        failures.append(f"nvme_core io_timeout is {running} at run time; wanted {wanted}")
    if persisted is None:
        failures.append("nvme_core.io_timeout is set neither in modprobe.d nor on the GRUB "
                        "command line; it returns to the default at boot")
    elif persisted != wanted:
        failures.append(f"nvme_core io_timeout = {persisted} in {where}; wanted {wanted}")
    assert not failures, "; ".join(failures)


# -- Data Fabric ----------------------------------------------------------------------------

_SIZE = re.compile(r"^(\d+)([kmgt]?)b?$", re.IGNORECASE)
_UNITS = {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def _mib(value: str) -> float | None:
    found = _SIZE.match(value.strip())
    return int(found.group(1)) * _UNITS[found.group(2).lower()] if found else None


def _exports(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        found = re.match(r'^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=["\']?([^"\'#]*)["\']?\s*$', line)
        if found:
            out[found.group(1)] = found.group(2).strip()
    return out


@rule("PERF-012")
def test_perf_012(host: Any, evidence: dict[str, Any], params: dict[str, Any]) -> None:
    """The Data Fabric JVM and Spark sizes fit the node's memory and cores."""
    home = params["mapr_home"]
    out = _read(host, {
        "env": f"cat {shlex.quote(home)}/conf/env_override.sh",
        "meminfo": "cat /proc/meminfo",
        "cpus": "getconf _NPROCESSORS_ONLN",
    })
    env = _exports(out.get("env", ""))
    total = re.search(r"^MemTotal:\s+(\d+) kB", out.get("meminfo", ""), flags=re.MULTILINE)
    assert total, "MemTotal not found in /proc/meminfo"
    memory_mib = int(total.group(1)) / 1024
    cpus = int(out.get("cpus") or 0)
    names = ("MAPR_MEMORY_OPTS", "SPARK_DRIVER_MEMORY", "SPARK_EXECUTOR_MEMORY",
             "SPARK_EXECUTOR_CORES")
    evidence.update({"file": f"{home}/conf/env_override.sh", "memory_mib": round(memory_mib),
                     "vcpus": cpus, "settings": {n: env.get(n) for n in names}})
    missing = [n for n in names if not env.get(n)]
    assert not missing, f"{', '.join(missing)} not set in {home}/conf/env_override.sh"
    xmx = re.findall(r"-Xmx(\d+[kKmMgGtT]?)", env["MAPR_MEMORY_OPTS"])
    sizes = {
        "mapr_heap": _mib(xmx[-1]) if xmx else None,
        "driver": _mib(env["SPARK_DRIVER_MEMORY"]),
        "executor": _mib(env["SPARK_EXECUTOR_MEMORY"]),
    }
    bad = [k for k, v in sizes.items() if v is None]
    assert not bad, f"cannot read the sizes {', '.join(bad)} ({evidence['settings']})"
    budget = memory_mib * (100 - int(params["os_share_percent"])) / 100
    used = sizes["mapr_heap"] + sizes["driver"] + sizes["executor"] * 1.1  # type: ignore[operator]
    cores = env["SPARK_EXECUTOR_CORES"]
    evidence.update({"sizes_mib": sizes, "used_mib": round(used), "budget_mib": round(budget)})
    failures = []
    if used > budget:
        failures.append(
            f"MapR heap {sizes['mapr_heap']:.0f} MiB + Spark driver {sizes['driver']:.0f} MiB + "
            f"one executor {sizes['executor']:.0f} MiB (+10 %) = {used:.0f} MiB exceed "
            f"{budget:.0f} MiB ({100 - int(params['os_share_percent'])} % of {memory_mib:.0f} MiB)"
        )
    if not cores.isdigit() or not 1 <= int(cores) <= max(cpus, 1):
        failures.append(f"SPARK_EXECUTOR_CORES is {cores}; the node has {cpus} vCPUs")
    assert not failures, "; ".join(failures)
