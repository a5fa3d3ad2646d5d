"""The one-round-trip host snapshot, run for real on this machine (read-only) and on a dead port."""

from __future__ import annotations

import glob
import os
import socket
from pathlib import Path

import testinfra

from m7guard.checks.support.snapshot import HostSnapshot, build_script, gather, parse_output

KEYS = ["net.ipv4.ip_forward", "kernel.randomize_va_space", "net.ipv4.no_such_key"]


def test_gather_on_this_machine_matches_proc_and_the_config_files() -> None:
    host = testinfra.get_host("local://")
    snap = gather(host, "localhost", None, KEYS)
    assert snap.error is None
    for key in KEYS[:2]:
        expected = Path("/proc/sys/" + key.replace(".", "/")).read_text().strip()
        assert snap.running[key].value == expected
    assert snap.running["net.ipv4.no_such_key"].value is None
    assert "No such file" in snap.running["net.ipv4.no_such_key"].error
    on_disk = {
        p
        for d in ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")
        for p in glob.glob(f"{d}/*.conf")
    }
    seen = {f.path for f in snap.config.files}
    assert seen <= on_disk | {"/etc/sysctl.conf", *glob.glob("/lib/sysctl.d/*.conf")}
    assert {os.path.basename(p) for p in on_disk} <= {os.path.basename(p) for p in seen}
    try:
        pid1 = Path("/proc/1/environ").read_bytes().split(b"\0")
    except PermissionError:  # some sandboxes hide PID 1 even from root
        pid1 = []
    in_container = (
        os.path.exists("/.dockerenv")
        or os.path.exists("/run/.containerenv")
        or any(v.startswith(b"container=") for v in pid1)
    )
    assert (snap.facts.container is not None) == in_container
    assert bool(snap.facts.container_signals) == in_container
    assert snap.facts.ipv6 == os.path.isdir("/proc/sys/net/ipv6")
    assert snap.facts.hostname == socket.gethostname()


def test_unreachable_host_gives_an_error_not_an_exception() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = testinfra.get_host(
        f"ssh://root@127.0.0.1:{port}",
        ssh_extra_args=(
            "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        ),
    )
    snap = gather(host, "ghost", ("all",), KEYS)
    assert snap.error is not None
    assert snap.error.startswith("host unreachable:")
    assert "Connection refused" in snap.error


def test_parse_output_reads_every_section() -> None:
    m = "@@m7g-test"
    out = "\n".join(
        [
            f"{m} virt",
            "none",
            f"{m} containerenv",
            "/run/.containerenv",
            f"{m} pid1",
            "container=podman",
            f"{m} ipv6",
            "yes",
            f"{m} mapr",
            "installed",
            "7.8.0.0.20240101",
            f"{m} systemd",
            "yes",
            f"{m} hostname",
            "node1",
            f"{m} sysctl net.ipv4.ip_forward",
            "0",
            f"{m} sysctl kernel.nope",
            f"{m} sysctl-error kernel.nope",
            "cat: No such file",
            f"{m} file /etc/sysctl.d/99-x.conf /etc/sysctl.d/99-x.conf",
            "net.ipv4.ip_forward = 0",
            "",
            f"{m} waivers",
            '{"waivers": []}',
            f"{m} end",
        ]
    )
    snap = HostSnapshot("node1", ("all",))
    parse_output(out, m, snap)
    assert snap.facts.container == "podman"
    assert snap.facts.container_signals == [
        "/run/.containerenv exists",
        "PID 1 environment: container=podman",
    ]
    assert snap.facts.ipv6 and snap.facts.systemd and snap.facts.mapr_installed
    assert snap.facts.mapr_version == "7.8.0.0.20240101"
    assert snap.running["net.ipv4.ip_forward"].value == "0"
    assert snap.running["kernel.nope"].value is None
    eff = snap.config.effective("net.ipv4.ip_forward")
    assert eff is not None and eff.where == "/etc/sysctl.d/99-x.conf:1"
    assert snap.waivers_raw == '{"waivers": []}'
    assert not snap.facts.condition("not_container") and snap.facts.condition("mapr_installed")


def test_script_reads_every_requested_key_once() -> None:
    script = build_script(["a.b", "a/b", "c.d"], "@@x")
    assert script.count("@@x sysctl a.b'") == 1
    assert "/proc/sys/c/d" in script


def test_files_without_a_final_newline_do_not_swallow_the_next_section(tmp_path: Path) -> None:
    """The script ends every file it prints with a newline, so the section markers stay at
    the start of a line (a waiver fact or MapR version file rarely ends with one)."""
    import subprocess

    script = build_script([], "@@t")
    fake = tmp_path / "fact"
    fake.write_text('{"waivers": []}')  # no trailing newline
    script = script.replace("/etc/ansible/facts.d/m7guard_waivers.fact", str(fake))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    snap = HostSnapshot("x", None)
    parse_output(out, "@@t", snap)
    assert snap.waivers_raw == '{"waivers": []}'
    assert "@@t end" in out.splitlines()
