"""The lab's life: built from nothing, idempotent, taken down completely, recovered after a
`lab up` killed half-way, and completed from its cache. These run first (marker
lab_lifecycle) and leave the full lab up for every other integration test. vm1 boots under
emulation, about a minute of CPU each time: the killed `lab up` and its recovery leave it
out (--no-vm), and the next `lab up` adds it from the cached disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from labkit import BIN, ROOT, LabHandle, lab_model, run_m7guard

from m7guard.lab.image import ImageCache, Recipe
from m7guard.lab.spec import LAB_LABEL

pytestmark = [pytest.mark.lab, pytest.mark.lab_lifecycle]

LAB = lab_model()
SPEC = LAB.spec
STATE = LAB.paths.state
LABEL = f"{LAB_LABEL}={SPEC.name}"
CACHE = Path(os.environ["M7GUARD_CACHE_DIR"])
HANDLE = LabHandle(root=ROOT, inventory=LAB.paths.inventory)
# the Debian releases of the tests' lab (labkit: the release matrix)
RELEASES = sorted({node.release for node in SPEC.containers})


def cache_of(release: str) -> ImageCache:
    return ImageCache(CACHE, Recipe(suite=release))


def podman_json(*args: str) -> list[dict]:
    out = subprocess.run(["podman", "--runtime", "/usr/sbin/runc", *args, "--format", "json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def lab_containers() -> list[dict]:
    return podman_json("ps", "-a", "--filter", f"label={LABEL}")


def lab_networks() -> list[dict]:
    return podman_json("network", "ls", "--filter", f"label={LABEL}")


def qemu_processes() -> list[int]:
    """Processes whose command line names this checkout's lab directory."""
    marker = str(STATE).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and marker in cmdline:
            pids.append(int(entry.name))
    return pids


def timed_up(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = run_m7guard("lab", "up", *args)
    return proc, time.monotonic() - start


def ping_all(expect: set[str]) -> None:
    proc = HANDLE.ansible("all", "-m", "ansible.builtin.ping", "-o")
    ok = {line.split(" | ")[0] for line in proc.stdout.splitlines() if "| SUCCESS" in line}
    assert ok == expect, proc.stdout + proc.stderr


def test_01_fresh_build_then_every_node_answers_ansible() -> None:
    run_m7guard("lab", "down", "--purge")
    assert not CACHE.exists()
    for release in RELEASES:
        users = podman_json("ps", "-a", "--filter", f"ancestor={cache_of(release).image_tag}")
        assert users == [], (
            f"the purged cache's {release} node image is still in use by: "
            + ", ".join(c["Names"][0] for c in users)
        )
    proc, took = timed_up()
    print(f"\nlab up from an empty cache: {took:.0f} s")
    assert "built node image" in proc.stderr
    ping_all(set(SPEC.node_names))


def test_02_second_up_changes_nothing() -> None:
    before = {c["Names"][0]: c["Id"] for c in lab_containers()}
    vm_before = qemu_processes()
    inventory_before = HANDLE.inventory.read_text()
    proc, _ = timed_up()
    assert "nothing to do" in proc.stderr, proc.stderr
    assert {c["Names"][0]: c["Id"] for c in lab_containers()} == before
    assert qemu_processes() == vm_before and len(vm_before) == 1
    assert HANDLE.inventory.read_text() == inventory_before


def test_03_container_nodes_run_systemd_in_their_own_network_namespace() -> None:
    host_netns = os.readlink("/proc/self/ns/net")
    for node in SPEC.containers:
        out = HANDLE.ssh(node.name, "readlink /proc/self/ns/net; cat /proc/1/comm; "
                                    "systemctl is-system-running || true; hostname").stdout.split()
        netns, pid1, state, hostname = out[:4]
        assert netns != host_netns, node.name
        assert pid1 == "systemd", node.name
        assert state in ("running", "degraded"), (node.name, state)
        assert hostname == node.name
        # one default route per family, through the gateway of the zone it is reached on
        net = SPEC.network(node.ssh_zone)
        routes = HANDLE.ssh(node.name, "ip -4 route show default; ip -6 route show default")
        defaults = routes.stdout.strip().splitlines()
        assert len(defaults) == 2, (node.name, defaults)
        assert f"via {net.gateway4} " in defaults[0] and f"via {net.gateway6} " in defaults[1]
        # each zone's interface has the lab's fixed MAC address (kept by `lab reset`)
        macs = HANDLE.ssh(node.name, "cat /sys/class/net/eth*/address").stdout.split()
        assert sorted(macs) == sorted(SPEC.mac(node, zone) for zone in node.zones), node.name


def test_04_vm_has_its_own_kernel_and_an_nvme_drive() -> None:
    out = HANDLE.ssh("vm1", "uname -r; cat /proc/sys/kernel/random/boot_id; "
                            "test -b /dev/nvme0n1 && echo nvme-ok; "
                            "cat /sys/block/nvme0n1/device/serial").stdout.split()
    assert out[0] != os.uname().release
    assert out[1] != Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert out[2] == "nvme-ok"
    assert out[3] == SPEC.vm.nvme_serial


def test_05_down_leaves_nothing_behind_but_the_cache() -> None:
    run_m7guard("lab", "down")
    assert lab_containers() == []
    assert lab_networks() == []
    assert qemu_processes() == []
    assert not (STATE).exists()
    assert not HANDLE.inventory.exists()
    for release in RELEASES:
        assert cache_of(release).has_container_image(), release
    assert cache_of(SPEC.vm.release).has_vm_image()


def test_06_a_killed_lab_up_is_cleaned_by_the_next_one() -> None:
    run_m7guard("lab", "down")  # down since test_05 unless that failed
    proc = subprocess.Popen([str(BIN / "m7guard"), "lab", "up", "--no-vm"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(lab_containers()) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    half = lab_containers()
    assert 2 <= len(half) < len(SPEC.containers), "the kill should land half-way"
    assert (STATE / "up-in-progress").exists()

    again = run_m7guard("lab", "up", "--no-vm")
    assert "was interrupted" in again.stderr
    # the containers come back from the node images test_05 kept, nothing is built
    assert "reusing cached node image" in again.stderr
    assert "built" not in again.stderr.replace("built-in", ""), again.stderr
    names = sorted(c["Names"][0] for c in lab_containers())
    assert names == sorted(SPEC.container_name(n) for n in SPEC.containers)
    assert all(c["State"] == "running" for c in lab_containers())
    assert not (STATE / "up-in-progress").exists()
    ping_all({n.name for n in SPEC.containers})


def test_07_up_after_down_reuses_the_cached_images() -> None:
    """After test_05's down the containers came back from the cached node images (test_06,
    --no-vm); this `lab up` adds vm1 from the cached VM disk, and builds nothing."""
    proc, took = timed_up()
    print(f"\nlab up from the cache: {took:.0f} s")
    assert "reusing cached node image" in proc.stderr
    assert "reusing cached VM disk" in proc.stderr
    assert "built" not in proc.stderr.replace("built-in", "")
    # Reuse skips debootstrap, the kernel install and both image writes (each says so when
    # it runs: m7guard/lab/image.py).
    for step in ("debootstrap", "installing Debian's kernel", "writing the VM's root disk",
                 "importing the node image"):
        assert step not in proc.stderr, (step, proc.stderr)
    ping_all(set(SPEC.node_names))


def test_08_full_lab_up_for_the_remaining_tests() -> None:
    timed_up()
    ping_all(set(SPEC.node_names))
