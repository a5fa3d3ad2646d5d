"""The one-round-trip host snapshot, run for real on this machine (read-only) and on a dead port."""

from __future__ import annotations

import glob
import os
import socket
from pathlib import Path

import testinfra

from m7guard.checks.support.snapshot import HostSnapshot, build_script, gather, parse_output
from m7guard.checks.support.sysctl import proc_path

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


def _key_per_cat(keys: list[str], marker: str) -> str:
    """The running values as the snapshot read them before: a cat per key."""
    lines = []
    for key in keys:
        path = proc_path(key)
        lines.append(f"echo '{marker} sysctl {key}'; if v=$(cat {path} 2>&1); then echo \"$v\"; "
                     f"else echo '{marker} sysctl-error {key}'; echo \"$v\"; fi")
    return "\n".join(lines)


def test_one_awk_reads_the_running_values_as_a_cat_per_key_did(tmp_path: Path) -> None:
    """The values one awk process reads, and the errors of keys it leaves to cat, parse as a
    cat per key parsed: on a copy of /proc/sys's shapes (the script's paths moved into a
    temporary directory; nothing of the machine's own kernel is read)."""
    import subprocess

    root = tmp_path / "proc"
    values = {
        "net.ipv4.ip_forward": b"0\n",
        "net.ipv4.tcp_rmem": b"4096\t131072\t6291456\n",
        "fs.pipe_keep": b"line one\nline two\n\n\n",  # several lines, trailing newlines
        "kernel.empty": b"",
        "kernel.no_newline": b"1",
    }
    for key, data in values.items():
        path = root / proc_path(key).removeprefix("/proc/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "sys" / "net" / "ipv4" / "conf").mkdir(parents=True)  # a directory, not a value
    keys = [*values, "kernel.nope", "net.ipv4.conf"]

    def running(script: str) -> dict[str, tuple[str | None, str]]:
        script = script.replace("/proc/sys/", f"{root}/sys/")
        out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                             check=True).stdout
        snap = HostSnapshot("x", None)
        parse_output(out, "@@t", snap)
        return {k: (v.value, v.error) for k, v in snap.running.items()}

    new = running(build_script(keys, "@@t"))
    old = running(_key_per_cat(sorted(keys), "@@t") + "\necho '@@t end'")
    assert new == old
    assert new["fs.pipe_keep"][0] == "line one\nline two"
    assert new["kernel.nope"][0] is None and "No such file" in new["kernel.nope"][1]
    assert new["net.ipv4.conf"][0] is None and "Is a directory" in new["net.ipv4.conf"][1]
    assert set(new) == set(keys)
