"""Kernel hardening checks: the KERN-* rules of policies/rules/kernel/.

Each check requires the running value (/proc/sys) and the persisted value (sysctl.d files,
systemd-sysctl precedence) of its keys to be among the rule's `allowed` parameter. Keys of the
host kernel (kernel.*, fs.*) are notapplicable on container nodes; the network keys are per
namespace and are checked everywhere.
"""

from __future__ import annotations

from typing import Any

from m7guard.checks import rule
from m7guard.checks.support.sysctl import SysctlCheck


@rule("KERN-001", sysctl=["kernel.kptr_restrict"])
def test_kern_001(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Kernel pointers are hidden from unprivileged users."""
    sysctl.require(params["allowed"])


@rule("KERN-002", sysctl=["kernel.dmesg_restrict"])
def test_kern_002(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """The kernel log is readable only by privileged users."""
    sysctl.require(params["allowed"])


@rule("KERN-003", sysctl=["kernel.randomize_va_space"])
def test_kern_003(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Full address space layout randomisation is on."""
    sysctl.require(params["allowed"])


@rule("KERN-004", sysctl=["fs.suid_dumpable"])
def test_kern_004(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Set-uid programs do not leave core dumps."""
    sysctl.require(params["allowed"])


@rule("KERN-005", sysctl=["kernel.yama.ptrace_scope"])
def test_kern_005(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """ptrace is limited to descendants or administrators."""
    sysctl.require(params["allowed"])


@rule("KERN-006", sysctl=["kernel.unprivileged_bpf_disabled"])
def test_kern_006(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Unprivileged users cannot load eBPF programs."""
    sysctl.require(params["allowed"])


@rule("KERN-007", sysctl=["fs.protected_hardlinks", "fs.protected_symlinks"])
def test_kern_007(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Hard and symbolic link protections are on."""
    sysctl.require(params["allowed"])


@rule("KERN-008", sysctl=["net.ipv4.ip_forward"])
def test_kern_008(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """The node does not route packets between interfaces."""
    sysctl.require(params["allowed"])


@rule("KERN-009", sysctl=["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"])
def test_kern_009(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Reverse-path filtering drops spoofed source addresses."""
    sysctl.require(params["allowed"])


@rule(
    "KERN-010",
    sysctl=["net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects"],
)
def test_kern_010(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """ICMP redirects are not accepted (IPv4)."""
    sysctl.require(params["allowed"])


@rule(
    "KERN-011",
    sysctl=["net.ipv6.conf.all.accept_redirects", "net.ipv6.conf.default.accept_redirects"],
)
def test_kern_011(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """ICMP redirects are not accepted (IPv6)."""
    sysctl.require(params["allowed"])


@rule(
    "KERN-012",
    sysctl=["net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects"],
)
def test_kern_012(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """The node does not send ICMP redirects."""
    sysctl.require(params["allowed"])


@rule(
    "KERN-013",
    sysctl=["net.ipv4.conf.all.accept_source_route", "net.ipv4.conf.default.accept_source_route"],
)
def test_kern_013(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Source-routed packets are refused."""
    sysctl.require(params["allowed"])


@rule("KERN-014", sysctl=["net.ipv4.conf.all.log_martians", "net.ipv4.conf.default.log_martians"])
def test_kern_014(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Packets with impossible addresses are logged."""
    sysctl.require(params["allowed"])


@rule("KERN-015", sysctl=["net.ipv4.tcp_syncookies"])
def test_kern_015(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """TCP SYN cookies are on."""
    sysctl.require(params["allowed"])


@rule("KERN-016", sysctl=["net.ipv4.icmp_echo_ignore_broadcasts"])
def test_kern_016(sysctl: SysctlCheck, params: dict[str, Any]) -> None:
    """Broadcast ICMP echo requests are ignored."""
    sysctl.require(params["allowed"])
