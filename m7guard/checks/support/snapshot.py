"""One round trip per host: the facts the checks and their conditions need.

`gather()` runs one POSIX shell script through testinfra's `host.run` and parses its output:
container detection (systemd-detect-virt -c, /run/.containerenv, /.dockerenv, PID 1's
`container=`), IPv6, MapR, systemd, the running value of the requested kernel keys (from
/proc/sys), every persisted sysctl file, and waivers recorded as a host fact.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from m7guard.checks.support.sysctl import (
    SYSCTL_CONF,
    SYSCTL_DIRS,
    ConfigFile,
    RunningValue,
    SysctlConfig,
    normalize_key,
    proc_path,
)

WAIVER_FACT = "/etc/ansible/facts.d/m7guard_waivers.fact"
MAPR_VERSION_FILE = "/opt/mapr/MapRBuildVersion"
MAPR_CLUSTERS_CONF = "/opt/mapr/conf/mapr-clusters.conf"
MAPR_ROLES_DIR = "/opt/mapr/roles"  # one file per service installed on the node (cldb, ...)


class HostUnreachableError(Exception):
    """The host could not be reached, so none of its rules could be evaluated."""


@dataclass
class HostFacts:
    hostname: str = ""
    container: str | None = None
    container_signals: list[str] = field(default_factory=list)
    ipv6: bool = False
    mapr_installed: bool = False
    mapr_version: str = ""
    mapr_cluster: str = ""  # the first cluster of mapr-clusters.conf: the node's own
    mapr_roles: list[str] = field(default_factory=list)
    systemd: bool = False
    kind_source: str = "node"  # who decided `container`: the inventory, or the node itself
    container_claim_ignored: str = ""

    def apply_inventory(self, has_inventory: bool, kind: str | None, local: bool = False) -> None:
        """Let the inventory decide whether the node is a container (`m7guard_node_kind`, or
        the lab's `m7guard_lab_kind`): the node's own markers (/.dockerenv, ...) are only
        evidence, since anyone root on the node can create them. An inventory host with no
        declared kind is taken to have its own kernel, unless it is the controller itself
        (a local connection). Without an inventory (plain --hosts=ssh://...) the node's
        signals are all there is."""
        if not has_inventory:
            return
        if local and kind is None:  # the audited host is the controller: its own observation
            self.kind_source = "the controller itself (ansible_connection=local)"
            return
        self.kind_source = f"inventory ({kind or 'no kind declared: own kernel'})"
        if kind == "container":
            self.container = self.container or "container"
            return
        if self.container_signals:
            self.container_claim_ignored = (
                "the node looks like a container (" + "; ".join(self.container_signals)
                + ") but the inventory does not say it is one: its kernel rules apply"
            )
        self.container = None

    def condition(self, name: str) -> bool:
        conditions: dict[str, bool] = {
            "not_container": self.container is None,
            "container": self.container is not None,
            "mapr_installed": self.mapr_installed,
            "ipv6_enabled": self.ipv6,
            "systemd": self.systemd,
            "kind_source": self.kind_source,
            "container_claim_ignored": self.container_claim_ignored,
        }
        if name not in conditions:
            raise ValueError(f"unknown condition {name!r}")
        return conditions[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "container": self.container,
            "container_signals": self.container_signals,
            "ipv6": self.ipv6,
            "mapr_installed": self.mapr_installed,
            "mapr_version": self.mapr_version,
            "mapr_cluster": self.mapr_cluster,
            "mapr_roles": self.mapr_roles,
            "systemd": self.systemd,
            "kind_source": self.kind_source,
            "container_claim_ignored": self.container_claim_ignored,
        }


@dataclass
class HostSnapshot:
    name: str
    groups: tuple[str, ...] | None
    facts: HostFacts = field(default_factory=HostFacts)
    running: dict[str, RunningValue] = field(default_factory=dict)
    config: SysctlConfig = field(default_factory=SysctlConfig)
    waivers_raw: str = ""
    error: str | None = None
    duration: float = 0.0
    reader: Callable[[str], RunningValue] | None = None

    def running_value(self, key: str) -> RunningValue:
        key = normalize_key(key)
        if key not in self.running:
            if self.reader is None:
                return RunningValue(key, None, "not read")
            self.running[key] = self.reader(key)
        return self.running[key]


# Each (key, path) pair of its command line as the shell's `v=$(cat PATH); echo "$v"` printed
# it, after a line `<marker> sysctl KEY`: the whole file (RS never matches: a byte, then the
# start of the text) without its final newlines. A file it cannot read gets a section
# `<marker> sysctl-error KEY`.
_RUNNING_AWK = (
    'BEGIN { RS = "\\001^"; for (i = 1; i + 1 < ARGC; i += 2) { k = ARGV[i]; p = ARGV[i + 1]; '
    'v = ""; c = (getline v < p); close(p); if (c < 0) { print m " sysctl-error " k; '
    'print "cannot read " p } else { sub(/\\n+$/, "", v); print m " sysctl " k; print v } } '
    'exit }'
)


def build_script(keys: Iterable[str], marker: str) -> str:
    """The shell script gather() runs; every section starts with a line `<marker> NAME ARG`."""
    m = marker
    lines = [
        f"echo '{m} virt'; systemd-detect-virt -c 2>/dev/null || true",
        f"echo '{m} containerenv'; if [ -e /run/.containerenv ]; then echo /run/.containerenv; fi",
        "if [ -e /.dockerenv ]; then echo /.dockerenv; fi",
        f"echo '{m} pid1'; tr '\\000' '\\n' < /proc/1/environ 2>/dev/null "
        "| grep '^container=' || true",
        f"echo '{m} ipv6'; if [ -d /proc/sys/net/ipv6 ]; then echo yes; fi",
        f"echo '{m} mapr'; if [ -e {MAPR_VERSION_FILE} ]; then echo installed; "
        f"head -c 200 {MAPR_VERSION_FILE}; echo; fi",
        f"echo '{m} mapr-cluster'; if [ -r {MAPR_CLUSTERS_CONF} ]; then "
        f"grep -v '^[[:space:]]*#' {MAPR_CLUSTERS_CONF} | awk 'NF {{print $1; exit}}'; fi",
        f"echo '{m} mapr-roles'; if [ -d {MAPR_ROLES_DIR} ]; then ls -1 {MAPR_ROLES_DIR}; fi",
        f"echo '{m} systemd'; if [ -d /run/systemd/system ]; then echo yes; fi",
        f"echo '{m} hostname'; hostname 2>/dev/null || cat /proc/sys/kernel/hostname",
    ]
    # The running values: a key whose file the shell can read goes to one awk process that
    # reads them all (a process per key was most of the snapshot's cost on a node slow to
    # start processes, one under emulation); any other key is read by cat, whose error is the
    # evidence.
    lines.append("set --")
    for key in sorted({normalize_key(k) for k in keys}):
        path = shlex.quote(proc_path(key))
        lines.append(
            f"if [ -f {path} ] && [ -r {path} ]; then set -- \"$@\" {shlex.quote(key)} {path}; "
            f"else echo '{m} sysctl {key}'; if v=$(cat {path} 2>&1); then echo \"$v\"; "
            f"else echo '{m} sysctl-error {key}'; echo \"$v\"; fi; fi"
        )
    lines.append(f"awk -v m='{m}' '{_RUNNING_AWK}' \"$@\"")
    dirs = " ".join(SYSCTL_DIRS)
    lines.append(
        f'for d in {dirs}; do for f in "$d"/*.conf; do [ -e "$f" ] || [ -L "$f" ] || continue; '
        f'echo "{m} file $f $(readlink -f "$f")"; cat "$f" 2>/dev/null; echo; done; done'
    )
    lines.append(
        f"if [ -e {SYSCTL_CONF} ]; then "
        f'echo "{m} file {SYSCTL_CONF} $(readlink -f {SYSCTL_CONF})"; '
        f"cat {SYSCTL_CONF}; echo; fi"
    )
    lines.append(f"echo '{m} waivers'; if [ -r {WAIVER_FACT} ]; then cat {WAIVER_FACT}; echo; fi")
    lines.append(f"echo '{m} end'")
    return "\n".join(lines)


def parse_output(out: str, marker: str, snapshot: HostSnapshot) -> None:
    """Fill snapshot from the output of build_script()."""
    sections: list[tuple[list[str], list[str]]] = []
    for line in out.splitlines():
        if line.startswith(marker + " "):
            sections.append((line[len(marker) + 1 :].split(" "), []))
        elif sections:
            sections[-1][1].append(line)
    facts = snapshot.facts
    files: list[ConfigFile] = []
    errors: set[str] = set()
    for head, body in sections:
        name, args = head[0], head[1:]
        text = "\n".join(body).strip()
        if name == "virt" and text and text != "none":
            facts.container_signals.append(f"systemd-detect-virt -c: {text}")
            facts.container = facts.container or text
        elif name == "containerenv" and text:
            for path in body:
                facts.container_signals.append(f"{path} exists")
                facts.container = facts.container or ("docker" if "docker" in path else "podman")
        elif name == "pid1" and text:
            facts.container_signals.append(f"PID 1 environment: {text}")
            facts.container = facts.container or text.split("=", 1)[1] or "container"
        elif name == "ipv6":
            facts.ipv6 = text == "yes"
        elif name == "mapr":
            facts.mapr_installed = bool(body) and body[0] == "installed"
            facts.mapr_version = "\n".join(body[1:]).strip()
        elif name == "mapr-cluster":
            facts.mapr_cluster = text
        elif name == "mapr-roles":
            facts.mapr_roles = sorted(line.strip() for line in body if line.strip())
        elif name == "systemd":
            facts.systemd = text == "yes"
        elif name == "hostname":
            facts.hostname = text
        elif name == "sysctl":
            snapshot.running[args[0]] = RunningValue(args[0], text)
        elif name == "sysctl-error":
            errors.add(args[0])
            snapshot.running[args[0]] = RunningValue(args[0], None, text)
        elif name == "file":
            content = "\n".join(body)
            files.append(ConfigFile(args[0], content, args[1] if len(args) > 1 else ""))
        elif name == "waivers":
            snapshot.waivers_raw = text
    snapshot.config = SysctlConfig.parse(files)


def _host_error(exc: BaseException) -> str:
    """A one-line reason from testinfra's exception (an ssh CommandResult for rc 255)."""
    arg = exc.args[0] if exc.args else exc
    stderr = getattr(arg, "stderr", None)
    text = stderr.strip() if isinstance(stderr, str) and stderr.strip() else str(arg)
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")
    ]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def read_key(host: Any, key: str) -> RunningValue:
    """Read one key's running value (used for keys a check did not declare)."""
    result = host.run("cat %s", proc_path(key))
    if result.rc != 0:
        return RunningValue(key, None, result.stderr.strip()[:200])
    return RunningValue(key, result.stdout.strip())


def gather(
    host: Any, name: str, groups: tuple[str, ...] | None, keys: Iterable[str]
) -> HostSnapshot:
    """Snapshot of one host; a host that cannot be reached gets `error` set, never an exception."""
    snapshot = HostSnapshot(name=name, groups=groups)
    snapshot.reader = lambda key: read_key(host, key)
    marker = f"@@m7g-{secrets.token_hex(6)}"
    started = time.monotonic()
    try:
        result = host.run("sh -c %s", build_script(keys, marker))
    except Exception as exc:  # testinfra raises RuntimeError (ssh) or backend errors
        snapshot.error = f"host unreachable: {_host_error(exc)}"
    else:
        if f"{marker} end" not in result.stdout:
            reason = (result.stderr or result.stdout).strip().splitlines()
            snapshot.error = f"could not read host state (exit {result.rc}): " + (
                reason[-1][:300] if reason else "no output"
            )
        else:
            parse_output(result.stdout, marker, snapshot)
    snapshot.duration = time.monotonic() - started
    return snapshot
