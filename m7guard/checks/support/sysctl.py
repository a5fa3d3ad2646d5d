"""Kernel parameters: the running value and the persisted configuration, as systemd-sysctl sees it.

Persisted configuration follows systemd-sysctl (sysctl.d(5)):
- `*.conf` files of /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d
  and /lib/sysctl.d; a file in an earlier directory replaces (masks) a same-named file in a
  later one, so /etc overrides /usr/lib;
- the chosen files are read in lexical order of their basenames, whatever their directory;
  for a key, the last assignment wins;
- explicit assignments win over glob assignments (`net.ipv4.conf.*.rp_filter`) whatever their
  order; `-key` without a value keeps a key out of the globs;
- /etc/sysctl.conf is read last, as `sysctl --system` does, unless one of the files already is
  it (Debian links /etc/sysctl.d/99-sysctl.conf to it).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from m7guard.checks.support.verdict import not_applicable

SYSCTL_DIRS: tuple[str, ...] = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
SYSCTL_CONF = "/etc/sysctl.conf"

# Keys under these prefixes belong to the network namespace (a container has its own);
# everything else (kernel.*, vm.*, fs.*, most net.core.*) is the host kernel's.
NAMESPACED_PREFIXES: tuple[str, ...] = ("net.ipv4.", "net.ipv6.", "net.netfilter.", "net.unix.")
NAMESPACED_KEYS = frozenset({"net.core.somaxconn", "net.core.xfrm_acq_expires"})
GLOBAL_EXCEPTIONS = frozenset({"net.ipv4.tcp_mem", "net.ipv4.udp_mem", "net.ipv4.ipfrag_secret"})


def is_namespaced(key: str) -> bool:
    """Whether a key is per network namespace (so a container node has its own value)."""
    key = normalize_key(key)
    if key in GLOBAL_EXCEPTIONS:
        return False
    return key in NAMESPACED_KEYS or key.startswith(NAMESPACED_PREFIXES)


def normalize_key(key: str) -> str:
    """Dotted form of a key; `a/b.c/d` (slash first) means `a.b/c.d` as in sysctl.d(5)."""
    key = key.strip()
    slash, dot = key.find("/"), key.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        key = key.replace(".", "\0").replace("/", ".").replace("\0", "/")
    return key


def proc_path(key: str) -> str:
    return "/proc/sys/" + normalize_key(key).replace(".", "/")


def normalize_value(value: str) -> str:
    return " ".join(value.split())


@dataclass(frozen=True)
class ConfigFile:
    path: str
    content: str
    realpath: str = ""

    @property
    def basename(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class Assignment:
    key: str
    value: str
    file: str
    line: int
    glob: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def effective_files(files: Iterable[ConfigFile]) -> list[ConfigFile]:
    """The files systemd-sysctl applies, in the order it applies them."""
    files = list(files)
    rank = {d: i for i, d in enumerate(SYSCTL_DIRS)}
    chosen: dict[str, ConfigFile] = {}
    for f in sorted(
        (f for f in files if posixpath.dirname(f.path) in rank and f.path.endswith(".conf")),
        key=lambda f: rank[posixpath.dirname(f.path)],
    ):
        chosen.setdefault(f.basename, f)
    ordered = [chosen[name] for name in sorted(chosen)]
    seen = {f.realpath or f.path for f in ordered}
    for f in files:
        if f.path == SYSCTL_CONF and (f.realpath or f.path) not in seen:
            ordered.append(f)
    return ordered


@dataclass
class SysctlConfig:
    """Parsed persisted configuration of one host."""

    files: list[ConfigFile] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, files: Iterable[ConfigFile]) -> SysctlConfig:
        config = cls(files=effective_files(files))
        for f in config.files:
            for number, raw in enumerate(f.content.splitlines(), start=1):
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if "=" not in line:
                    if line.startswith("-"):
                        config.excluded.add(normalize_key(line[1:]))
                    continue
                key, value = line.split("=", 1)
                key = normalize_key(key.lstrip("-"))
                glob = any(c in key for c in "*?[")
                config.assignments.append(
                    Assignment(key, normalize_value(value), f.path, number, glob)
                )
        return config

    def history(self, key: str) -> list[Assignment]:
        """Every assignment that sets key, in the order applied (explicit after globs)."""
        key = normalize_key(key)
        globs = [
            a
            for a in self.assignments
            if a.glob and key not in self.excluded and fnmatch.fnmatchcase(key, a.key)
        ]
        explicit = [a for a in self.assignments if not a.glob and a.key == key]
        return globs + explicit

    def effective(self, key: str) -> Assignment | None:
        """The assignment that decides key's value at boot, or None if nothing sets it."""
        history = self.history(key)
        return history[-1] if history else None


@dataclass(frozen=True)
class RunningValue:
    key: str
    value: str | None
    error: str = ""


Predicate = Callable[[str], bool]


def one_of(allowed: Iterable[Any]) -> tuple[Predicate, str]:
    """A value equal to one of `allowed`, and how to say so."""
    values = [str(a) for a in allowed]
    return (lambda value: value in values), " or ".join(values)


class SysctlCheck:
    """The one reader of kernel keys for the checks (KERN and PERF alike).

    A key holds when its running value and its persisted value both satisfy what the rule
    wants. On a container node the host kernel's keys are left out and recorded as such
    (`host_kernel_keys`); the container's own (network namespace) keys are still judged, and
    only when no key is left is the result notapplicable.
    """

    def __init__(
        self,
        keys: Sequence[str],
        running: Any,
        config: SysctlConfig,
        container: str | None,
        evidence: dict[str, Any],
    ) -> None:
        if not keys:
            raise ValueError("the check names no sysctl key: add sysctl=[...] to its @rule")
        self.keys = [normalize_key(k) for k in keys]
        self._running = running
        self.config = config
        self.container = container
        self.evidence = evidence

    def require(self, allowed: Iterable[int | str]) -> None:
        """Fail unless every key is one of `allowed`, at run time and in the persisted files."""
        __tracebackhide__ = True
        self.require_each({key: one_of(allowed) for key in self.keys})

    def require_each(self, wanted: Mapping[str, tuple[Predicate, str]]) -> None:
        """Fail unless every key satisfies its (predicate, description), at run time and in
        the persisted files."""
        __tracebackhide__ = True
        wanted = {normalize_key(k): v for k, v in wanted.items()}
        host_keys = [k for k in wanted if self.container and not is_namespaced(k)]
        failures: list[str] = []
        records: list[dict[str, Any]] = []
        for key, (ok, describe) in wanted.items():
            if key in host_keys:
                continue
            running: RunningValue = self._running(key)
            persisted = self.config.effective(key)
            overridden = [f"{a.where} = {a.value}" for a in self.config.history(key)[:-1]]
            record: dict[str, Any] = {
                "key": key,
                "read": proc_path(key),
                "running": running.value,
                "persisted": persisted.value if persisted else None,
                "persisted_in": persisted.where if persisted else None,
                "overridden": overridden,
                "wanted": describe,
            }
            if running.value is None:
                failures.append(f"{key} cannot be read ({running.error or 'no such key'})")
            elif not ok(normalize_value(running.value)):
                failures.append(f"{key} is {running.value} at run time; wanted: {describe}")
            if persisted is None:
                failures.append(
                    f"{key} is not set in any sysctl configuration file; the running value is lost "
                    "at reboot"
                )
            elif not ok(persisted.value):
                failures.append(
                    f"{key} = {persisted.value} in {persisted.where}; wanted: {describe}"
                )
            record["compliant"] = not any(f.startswith(f"{key} ") for f in failures)
            records.append(record)
        self.evidence["sysctl"] = records
        if host_keys:
            self.evidence["host_kernel_keys"] = host_keys
        if not records:
            not_applicable(
                f"{', '.join(host_keys)} belong to the host kernel, not to this "
                f"{self.container} container; verify on a VM or bare-metal node"
            )
        self.evidence["config_files"] = [f.path for f in self.config.files]
        if failures:
            raise AssertionError("; ".join(failures))
