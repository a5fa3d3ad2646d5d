"""Breaks of the kernel (KERN-*) and tuning (PERF-*) rules.

Every KERN rule and PERF-001 .. PERF-006 require a running value (/proc/sys) and a persisted
value (the sysctl.d files as systemd-sysctl orders them): each key gets one break of each.
A running value is written to /proc/sys (the value found is kept under SAVE and written back);
a persisted value is overridden by an operator's file, /usr/local/lib/sysctl.d/zz-local-KEY.conf,
which sorts after every other file and so decides the value at the next boot. It lies outside
the paths AIDE watches (AUD-008), so the override breaks only its own rule.

Keys of the host kernel (kernel.*, fs.*, vm.*, net.core.*) are notapplicable on the container
data nodes, which share the host's kernel (and, being privileged, could even change it): those
breaks run on vm1 only, a qemu VM with its own kernel, hardened by kernel_tuning (and
audit_logging). The per-namespace net.ipv4/net.ipv6 keys run on the containers, whose network
namespace is their own. /sys (transparent huge pages, NVMe queues, nvme_core), IRQs and
irqbalance are the host's too: PERF-007, PERF-009, PERF-010 and PERF-011 run on vm1, whose
emulated NVMe drive is nvme0n1 (tests/integration/test_vm1.py).

Breaks listed in AIDE_WATCHED change a file under /etc (the only place the property lives):
AIDE sees the change, so AUD-008 turns fail on that node too during the round.
"""

from __future__ import annotations

import shlex

from battery import AIDE_WATCHED, SAVE, Break, drop, edit, tag, watched

VM = ("vm1",)
CONTAINERS = ("node1", "node2", "node3")

LOCAL_SYSCTL = "/usr/local/lib/sysctl.d/zz-local-{key}.conf"  # one file per key broken
NVME = "/sys/block/nvme0n1/queue"
IO_TIMEOUT = "/sys/module/nvme_core/parameters/io_timeout"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
LIMITS = "/etc/security/limits.d/90-m7guard-mapr.conf"
NVME_RULE = "/etc/udev/rules.d/60-m7guard-nvme.rules"

LEFT_OUT: dict[str, str] = {
    "PERF-012": "needs /opt/mapr/conf/env_override.sh (condition mapr_installed): /opt/mapr "
                "does not exist on the lab nodes, so the rule is notapplicable",
}

def _proc(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _write(path: str, value: str, read: str = "", also: tuple[str, ...] = ()) -> tuple[str, str]:
    """(apply, restore) writing `value` (a shell word: literal, quoted here, or `$(...)`) into
    a /proc or /sys file. The value found there (as `read` prints it; by default the file's
    fields joined by single spaces) is kept under SAVE and written back; so are the files of
    `also`, written back after `path` (the kernel changes them when `path` changes)."""

    def reader(p: str) -> str:
        return read if read and p == path else f"echo $(cat {p})"

    keep = [(p, f"{SAVE}/was_{tag(p)}") for p in (path, *also)]
    saving = " && ".join(f"{{ [ -e {k} ] || {reader(p)} > {k}; }}" for p, k in keep)
    apply = (f"mkdir -p {SAVE} && {saving} && v={value} && printf '%s\\n' \"$v\" > {path} && "
             f"[ \"$({reader(path)})\" = \"$v\" ]")
    restore = " && ".join(f"{{ [ ! -e {k} ] || {{ cat {k} > {p} && rm -f {k}; }}; }}"
                          for p, k in keep)
    return apply, restore


def _persist(key: str, value: str) -> tuple[str, str]:
    """(apply, restore): the local sysctl file sets key to value; the apply checks that, in
    the order systemd-sysctl applies the files, this is the key's last assignment."""
    pattern = key.replace(".", r"\.")
    last = (f"systemd-analyze cat-config sysctl.d | sed -n "
            f"'s/^[[:space:]]*{pattern}[[:space:]]*=[[:space:]]*//p' | tail -n 1")
    apply, restore = drop(LOCAL_SYSCTL.format(key=key),
                           "\"$(printf '%s = %s' " + key + " \"$v\")\"",
                           f"[ \"$(echo $({last}))\" = \"$v\" ]")
    return f"v={value} && {apply}", restore


def _sysctl(rule: str, key: str, bad: str, nodes: tuple[str, ...],
            also: tuple[str, ...] = (), shown: str = "") -> list[Break]:
    """A break of the running value and one of the persisted value of key."""
    value = shlex.quote(bad) if not bad.startswith("$(") else bad
    shown = shown or bad
    running = _write(_proc(key), value, also=tuple(_proc(k) for k in also))
    return [
        Break(rule, f"{key} = {shown} at run time", *running, nodes=nodes),
        Break(rule, f"{key} = {shown} persisted by a later sysctl.d file", *_persist(key, value),
              nodes=nodes),
    ]


def _unit(rule: str, what: str, stop: str, start: str, check: str,
          nodes: tuple[str, ...]) -> Break:
    return Break(rule, what, f"{stop} && {check}", start, nodes=nodes)


BREAKS: list[Break] = []

# --- KERN: host kernel keys (vm1) --------------------------------------------------------
# kernel.*, fs.*: the host's kernel on a container node (notapplicable there).
BREAKS += _sysctl("KERN-001", "kernel.kptr_restrict", "0", VM)
BREAKS += _sysctl("KERN-002", "kernel.dmesg_restrict", "0", VM)
BREAKS += _sysctl("KERN-003", "kernel.randomize_va_space", "1", VM)
BREAKS += _sysctl("KERN-004", "fs.suid_dumpable", "1", VM)
BREAKS += _sysctl("KERN-005", "kernel.yama.ptrace_scope", "0", VM)
# The role sets 2, which (unlike 1) the kernel lets root lower and raise again.
BREAKS += _sysctl("KERN-006", "kernel.unprivileged_bpf_disabled", "0", VM)
BREAKS += _sysctl("KERN-007", "fs.protected_hardlinks", "0", VM)
BREAKS += _sysctl("KERN-007", "fs.protected_symlinks", "0", VM)

# --- KERN: per network namespace keys (the container data nodes) --------------------------
# Turning forwarding on sets conf.all.accept_redirects to 0 (it is 0) and turning it off
# again sets it to 1: its value is kept and written back after ip_forward.
BREAKS += _sysctl("KERN-008", "net.ipv4.ip_forward", "1", CONTAINERS,
                  also=("net.ipv4.conf.all.accept_redirects",))
# Loose mode (2): the effective value is the larger of all and the interface's, so the nodes'
# own traffic still passes.
BREAKS += _sysctl("KERN-009", "net.ipv4.conf.all.rp_filter", "2", CONTAINERS)
BREAKS += _sysctl("KERN-009", "net.ipv4.conf.default.rp_filter", "2", CONTAINERS)
BREAKS += _sysctl("KERN-010", "net.ipv4.conf.all.accept_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-010", "net.ipv4.conf.default.accept_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-011", "net.ipv6.conf.all.accept_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-011", "net.ipv6.conf.default.accept_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-012", "net.ipv4.conf.all.send_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-012", "net.ipv4.conf.default.send_redirects", "1", CONTAINERS)
BREAKS += _sysctl("KERN-013", "net.ipv4.conf.all.accept_source_route", "1", CONTAINERS)
BREAKS += _sysctl("KERN-013", "net.ipv4.conf.default.accept_source_route", "1", CONTAINERS)
BREAKS += _sysctl("KERN-014", "net.ipv4.conf.all.log_martians", "0", CONTAINERS)
BREAKS += _sysctl("KERN-014", "net.ipv4.conf.default.log_martians", "0", CONTAINERS)
BREAKS += _sysctl("KERN-015", "net.ipv4.tcp_syncookies", "0", CONTAINERS)
BREAKS += _sysctl("KERN-016", "net.ipv4.icmp_echo_ignore_broadcasts", "0", CONTAINERS)

# --- PERF: kernel parameters ---------------------------------------------------------------
# vm.*: the host kernel's (PERF-001, PERF-002 are not_container rules): vm1.
BREAKS += _sysctl("PERF-001", "vm.swappiness", "60", VM)
BREAKS += _sysctl("PERF-001", "vm.overcommit_memory", "1", VM)
# Half a percent of MemTotal, below the 1 % the rule requires.
BREAKS += _sysctl("PERF-002", "vm.min_free_kbytes",
                  "$(awk '/^MemTotal:/ {print int($2 / 200)}' /proc/meminfo)", VM,
                  shown="0.5 % of MemTotal")
BREAKS += _sysctl("PERF-003", "net.ipv4.tcp_retries2", "15", CONTAINERS)
BREAKS += _sysctl("PERF-003", "net.ipv4.tcp_fin_timeout", "60", CONTAINERS)
BREAKS += _sysctl("PERF-004", "net.ipv4.ip_local_port_range", "32768 60999", CONTAINERS)
# Below the kernel's floors the rule keeps (6 MiB receive, 4 MiB send) whatever the size.
# net.core.*: the host's (vm1); the tcp_* keys: per namespace (containers).
BREAKS += _sysctl("PERF-005", "net.core.rmem_max", "212992", VM)
BREAKS += _sysctl("PERF-005", "net.core.wmem_max", "212992", VM)
BREAKS += _sysctl("PERF-005", "net.ipv4.tcp_rmem", "4096 131072 1048576", CONTAINERS)
BREAKS += _sysctl("PERF-005", "net.ipv4.tcp_wmem", "4096 16384 1048576", CONTAINERS)
# net.core.netdev_max_backlog is the host kernel's (not_container rule): vm1. 1000 is the
# kernel default; vm1 (m7i.large, 0.781 Gbps) needs 2000.
BREAKS += _sysctl("PERF-006", "net.core.netdev_max_backlog", "1000", VM)

# --- PERF-007: transparent huge pages (vm1: /sys is the host's on a container) -------------
_BRACKET = "sed -n 's/.*\\[\\(.*\\)\\].*/\\1/p' "
# Turning transparent huge pages on makes the kernel raise vm.min_free_kbytes to its own
# recommendation (khugepaged's set_recommended_min_free_kbytes), and turning them off does not
# lower it: the break keeps min_free_kbytes too and writes it back. Keeping the same value
# as PERF-002's run-time break, the two never share a round (in one, PERF-002's break was
# overwritten before the audit).
BREAKS.append(Break("PERF-007", "transparent huge pages always at run time",
                    *_write(THP, "always", read=_BRACKET + THP,
                            also=(_proc("vm.min_free_kbytes"),)), nodes=VM))
# Nothing else sets it at boot (the lab's vm1 boots without GRUB); disabling the unit
# removes its link under /etc/systemd/system.
BREAKS.append(watched(_unit(
    "PERF-007", "the unit that sets it at boot disabled",
    "systemctl disable -q m7guard-thp.service", "systemctl enable -q m7guard-thp.service",
    "! systemctl is-enabled -q m7guard-thp.service", VM)))

# --- PERF-008: limits of the Data Fabric user ----------------------------------------------
# Only the pam_limits files can be broken: the lab has no mapr user (so no process of it)
# and no Data Fabric unit.
BREAKS.append(watched(Break("PERF-008", "soft nofile of mapr lowered to 1024", *edit(
    LIMITS, "s/^mapr soft nofile 65536$/mapr soft nofile 1024/"))))
BREAKS.append(watched(Break("PERF-008", "hard nproc of mapr lowered to 4096", *edit(
    LIMITS, "s/^mapr hard nproc 64000$/mapr hard nproc 4096/"))))

# --- PERF-009: irqbalance (vm1: not_container rule) ----------------------------------------
# numad running is not broken: it is not installed, and installing it is no break.
BREAKS.append(_unit("PERF-009", "irqbalance stopped", "systemctl stop irqbalance.service",
                    "systemctl start irqbalance.service",
                    "! systemctl is-active -q irqbalance.service", VM))
BREAKS.append(watched(_unit(
    "PERF-009", "irqbalance disabled at boot", "systemctl disable -q irqbalance.service",
    "systemctl enable -q irqbalance.service", "! systemctl is-enabled -q irqbalance.service",
    VM)))

# --- PERF-010: NVMe queues (vm1's emulated nvme0n1; a container's /sys is the host's) -------
BREAKS.append(Break("PERF-010", "nvme0n1 scheduler mq-deadline at run time",
                    *_write(f"{NVME}/scheduler", "mq-deadline",
                            read=_BRACKET + f"{NVME}/scheduler"), nodes=VM))
BREAKS.append(Break("PERF-010", "nvme0n1 nomerges 0 at run time",
                    *_write(f"{NVME}/nomerges", "0"), nodes=VM))
BREAKS.append(Break("PERF-010", "nvme0n1 nr_requests 32 at run time",
                    *_write(f"{NVME}/nr_requests", "32"), nodes=VM))
BREAKS.append(Break("PERF-010", "nvme0n1 read_ahead_kb 4096 at run time",
                    *_write(f"{NVME}/read_ahead_kb", "4096"), nodes=VM))


def _udev_override(attr: str, value: str) -> tuple[str, str]:
    """A package's udev rule, later than the role's, assigning another value to attr (it
    takes effect at the next add/change event of a device)."""
    line = (f'ACTION=="add|change", SUBSYSTEM=="block", KERNEL=="nvme[0-9]*n[0-9]*", '
            f'ATTR{{queue/{attr}}}="{value}"')
    return drop("/usr/lib/udev/rules.d/99-nvme-local.rules", shlex.quote(line))


BREAKS.append(Break("PERF-010", "a later udev rule sets scheduler mq-deadline",
                    *_udev_override("scheduler", "mq-deadline"), nodes=VM))
BREAKS.append(Break("PERF-010", "a later udev rule sets nomerges 0",
                    *_udev_override("nomerges", "0"), nodes=VM))
BREAKS.append(Break("PERF-010", "a later udev rule sets read_ahead_kb 4096",
                    *_udev_override("read_ahead_kb", "4096"), nodes=VM))
BREAKS.append(watched(Break("PERF-010", "the udev rule no longer sets nr_requests",
                             *edit(NVME_RULE, "/queue\\/nr_requests/d"), nodes=VM)))

# --- PERF-011: nvme_core io_timeout (vm1: the host's module on a container) ----------------
BREAKS.append(Break("PERF-011", "nvme_core io_timeout 30 at run time",
                    *_write(IO_TIMEOUT, "30"), nodes=VM))
# A later modprobe.d file (the role's is m7guard-nvme.conf); the lab's vm1 has no GRUB line.
BREAKS.append(Break("PERF-011", "a later modprobe.d file sets io_timeout 30",
                    *drop("/usr/lib/modprobe.d/nvme-timeout.conf",
                           shlex.quote("options nvme_core io_timeout=30")), nodes=VM))

__all__ = ["AIDE_WATCHED", "BREAKS", "LEFT_OUT", "SAVE"]
